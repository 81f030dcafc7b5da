"""One memory field's turn order, kept in process memory (embedded mode): what the covering
partial index ``ix_memories_field_turns`` gives a search (the turns around its best hits, the
sessions of its best candidates), without a statement.

Turns are ordered as there, by ``(occurred_at, turn_seq)``; each is held as one integer key
(microseconds since the epoch, shifted left past the sequence number) in a sorted list, so
an anchor's neighbours are its list neighbours and a new turn, usually the latest, is an
append. Reading 200 sessions and 30 anchors' neighbours costs ~0.2 ms however large the
field, against ~2 ms of SQLite's index seeks at 20k turns.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Sequence numbers below 2**40 (a trillion turns per field) keep keys in (time, seq) order.
_SEQ_BITS = 40


def micros(at: datetime) -> int:
    """``at`` (aware) as whole microseconds since the epoch."""
    return (at - _EPOCH) // _MICROSECOND


def _key(at_us: int, seq: int) -> int:
    return (at_us << _SEQ_BITS) | seq


class FieldTurns:
    """The field's conversation turns: id -> (key, session), and the keys in turn order.
    ``owner``: the field's user, the only one its turns are read for. Not thread-safe (see
    :mod:`persistence.field_store`)."""

    def __init__(self, *, owner: str) -> None:
        self.owner = owner
        self._turns: dict[str, tuple[int, int | None]] = {}
        self._keys: list[int] = []
        self._ids: list[str] = []

    def __len__(self) -> int:
        return len(self._turns)

    def load(self, rows: Iterable[tuple[str, datetime, int, int | None]]) -> None:
        """Rows (id, occurred_at, turn_seq, turn_session), read in turn order (an empty
        index only): appended, and sorted only if they were not in order after all."""
        turns, keys, ids = self._turns, self._keys, self._ids
        for memory_id, at, seq, session in rows:
            key = _key(micros(at), seq)
            turns[memory_id] = (key, session)
            keys.append(key)
            ids.append(memory_id)
        if any(a > b for a, b in pairwise(keys)):
            ordered = sorted(zip(keys, ids, strict=True))
            self._keys, self._ids = [k for k, _ in ordered], [m for _, m in ordered]

    def add(self, memory_id: str, at: datetime, seq: int, session: int | None) -> None:
        self.remove(memory_id)
        key = _key(micros(at), seq)
        self._turns[memory_id] = (key, session)
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)
            self._ids.append(memory_id)
            return
        i = bisect_left(self._keys, key)
        self._keys.insert(i, key)
        self._ids.insert(i, memory_id)

    def move(self, memory_id: str, at: datetime) -> None:
        """A turn's time was rewritten: it keeps its sequence number and session."""
        turn = self._turns.get(memory_id)
        if turn is not None:
            key, session = turn
            self.add(memory_id, at, key & ((1 << _SEQ_BITS) - 1), session)

    def remove(self, memory_id: str) -> None:
        turn = self._turns.pop(memory_id, None)
        if turn is None:
            return
        i = bisect_left(self._keys, turn[0])
        del self._keys[i]
        del self._ids[i]

    def sessions(self, memory_ids: Iterable[str]) -> dict[str, int]:
        """The session of each turn among ``memory_ids`` that has one."""
        found: dict[str, int] = {}
        turns = self._turns
        for memory_id in memory_ids:
            turn = turns.get(memory_id)
            if turn is not None and turn[1] is not None:
                found[memory_id] = turn[1]
        return found

    def around(
        self, anchors: Sequence[str], steps: int, span: timedelta
    ) -> dict[str, list[tuple[str, datetime]]]:
        """For each anchor that is a turn here: itself and up to ``steps`` turns on each side
        no further than ``span`` from it in time, as (id, occurred_at) in turn order; what
        ``MemoryQuery.turns_around`` returns."""
        found: dict[str, list[tuple[str, datetime]]] = {}
        keys, ids = self._keys, self._ids
        reach = span // _MICROSECOND
        last = len(keys) - 1
        for anchor in anchors:
            turn = self._turns.get(anchor)
            if turn is None:
                continue
            i = bisect_left(keys, turn[0])
            at_us = turn[0] >> _SEQ_BITS
            earliest = (at_us - reach) << _SEQ_BITS  # the smallest key at that time
            latest = at_us + reach
            lo = hi = i
            while lo > 0 and i - lo < steps and keys[lo - 1] >= earliest:
                lo -= 1
            while hi < last and hi - i < steps and keys[hi + 1] >> _SEQ_BITS <= latest:
                hi += 1
            found[anchor] = [
                (ids[j], _EPOCH + (keys[j] >> _SEQ_BITS) * _MICROSECOND) for j in range(lo, hi + 1)
            ]
        return found
