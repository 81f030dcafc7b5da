"""Session numbering at write time: a silence longer than the gap starts a new session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.sessions import SESSION_GAP, joined_sessions, number_sessions

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def test_turns_close_together_share_a_session() -> None:
    times = [T0, T0, T0 + timedelta(minutes=5), T0 + SESSION_GAP * 2, T0 + SESSION_GAP * 2]
    numbers, following = number_sessions(times, before=None, next_session=1)
    assert numbers == [1, 1, 1, 2, 2]
    assert following == 3


def test_a_batch_continues_the_session_before_it() -> None:
    numbers, following = number_sessions(
        [T0 + timedelta(hours=1), T0 + timedelta(days=1)], before=(T0, 7), next_session=9
    )
    assert numbers == [7, 9]
    assert following == 10
    far, _ = number_sessions([T0 + timedelta(days=3)], before=(T0, 7), next_session=9)
    assert far == [9]


def test_turns_stored_between_sessions_join_them_under_the_stored_label() -> None:
    hour = timedelta(hours=1)
    # Stored: session 1 at 9:00, session 2 at 15:00; a late turn at 12:00 closes the gap.
    bridged = joined_sessions([(T0, 1), (T0 + 3 * hour, 1), (T0 + 6 * hour, 2)], fresh_from=3)
    assert bridged == {2: 1}
    # The earlier half sent after the later one: its new label gives way to the stored one.
    backfill = [(T0, 3), (T0 + hour, 3), (T0 + 2 * hour, 2), (T0 + 3 * hour, 2)]
    assert joined_sessions(backfill, fresh_from=3) == {3: 2}
    # Still apart: nothing to relabel.
    apart = [(T0, 1), (T0 + SESSION_GAP * 2, 2)]
    assert joined_sessions(apart, fresh_from=3) == {}


def test_a_label_seen_on_both_sides_of_a_silence_is_not_relabelled() -> None:
    # Session 1 spans a silence (a turn moved in time keeps its session): relabelling it
    # would join what the silence separates; the other label gives way instead.
    far = T0 + SESSION_GAP * 3
    turns = [(T0, 1), (far, 2), (far + timedelta(minutes=1), 1)]
    assert joined_sessions(turns, fresh_from=3) == {2: 1}
