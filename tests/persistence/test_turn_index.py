"""A field's turn order in process memory (persistence/turn_index.py) against the rule the
SQL reads follow (persistence/repositories/turns.py): turns ordered by (occurred_at,
turn_seq), up to ``steps`` each side of an anchor and no further than ``span`` in time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from persistence.turn_index import FieldTurns, micros

_START = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)


def _reference(
    turns: dict[str, tuple[datetime, int, int | None]], anchor: str, steps: int, span: timedelta
) -> list[tuple[str, datetime]]:
    at, seq, _ = turns[anchor]
    order = sorted(turns.items(), key=lambda t: (t[1][0], t[1][1]))
    before = (
        [(m, t[0]) for m, t in order if (t[0], t[1]) < (at, seq) and t[0] >= at - span][-steps:]
        if steps
        else []
    )
    after = [(m, t[0]) for m, t in order if (t[0], t[1]) > (at, seq) and t[0] <= at + span][:steps]
    return [*before, (anchor, at), *after]


def test_neighbours_and_sessions_follow_the_sql_rule_through_changes() -> None:
    rng = random.Random(7)  # noqa: S311  # a repeatable sequence of edits, not a secret
    index = FieldTurns(owner="u")
    turns: dict[str, tuple[datetime, int, int | None]] = {}
    seq = 0
    for step in range(600):
        action = rng.random()
        if action < 0.7 or not turns:
            seq += 1
            # Few distinct times, some before the epoch: shared timestamps and sign both count.
            at = _START + timedelta(minutes=rng.choice([-(10**7), 0, 1, 2, 5, 30, 600, 601]))
            at += timedelta(microseconds=rng.choice([0, 0, 1]))
            memory_id = f"m{step}"
            session = rng.choice([None, 1, 2])
            index.add(memory_id, at, seq, session)
            turns[memory_id] = (at, seq, session)
        elif action < 0.85:
            memory_id = rng.choice(sorted(turns))
            index.remove(memory_id)
            del turns[memory_id]
        else:
            memory_id = rng.choice(sorted(turns))
            at = _START + timedelta(minutes=rng.choice([0, 3, 600]))
            index.move(memory_id, at)
            turns[memory_id] = (at, turns[memory_id][1], turns[memory_id][2])
        if step % 50 == 49:
            assert len(index) == len(turns)
            anchors = sorted(turns)
            for steps, span in [
                (0, timedelta(hours=1)),
                (2, timedelta(minutes=2)),
                (3, timedelta(days=10**4)),
            ]:
                got = index.around([*anchors, "unknown"], steps, span)
                assert set(got) == set(anchors)
                for anchor in anchors:
                    assert got[anchor] == _reference(turns, anchor, steps, span), (anchor, steps)
            assert index.sessions([*anchors, "unknown"]) == {
                m: s for m, (_, _, s) in turns.items() if s is not None
            }


def test_loading_rows_in_turn_order_equals_adding_them() -> None:
    rows = [(f"m{i}", _START + timedelta(seconds=i // 3), i, i // 10) for i in range(40)]
    loaded, added, shuffled = FieldTurns(owner="u"), FieldTurns(owner="u"), FieldTurns(owner="u")
    loaded.load(rows)
    shuffled.load(rows[20:] + rows[:20])  # not in order after all: sorted once
    for row in reversed(rows):  # out of order: each lands in its place
        added.add(*row)
    ids = [m for m, *_ in rows]
    span = timedelta(hours=1)
    assert loaded.around(ids, 4, span) == added.around(ids, 4, span)
    assert shuffled.around(ids, 4, span) == added.around(ids, 4, span)
    assert [m for m, _ in loaded.around(["m20"], 2, span)["m20"]] == [
        "m18",
        "m19",
        "m20",
        "m21",
        "m22",
    ]


def test_micros_is_exact_for_every_microsecond() -> None:
    at = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    assert micros(at) - micros(at - timedelta(microseconds=1)) == 1
    assert micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
