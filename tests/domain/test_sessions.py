"""Session numbering at write time: a silence longer than the gap starts a new session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.sessions import SESSION_GAP, number_sessions

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
