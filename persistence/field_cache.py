"""Facts about a field that searches read often and that change only with its writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

_T = TypeVar("_T")

# Values kept; past this the cache starts over.
MAX_FIELDS = 100_000


class FieldCache(Generic[_T]):
    """One value per field (how its vectors are searched, how many memories it holds),
    shared by a database's units of work: kept for ``ttl`` seconds or until this process
    commits a change to the field's memories (:meth:`forget`, from the unit of work).

    Another process's writes are seen when the value expires, so only what tolerates that
    much staleness belongs here: a choice of plan, or a statistic a ranking weighs."""

    def __init__(self, *, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._values: dict[str, tuple[_T, float]] = {}

    def get(self, field_id: str) -> _T | None:
        known = self._values.get(field_id)
        if known is None or known[1] <= self._clock():
            return None
        return known[0]

    def put(self, field_id: str, value: _T) -> None:
        if len(self._values) >= MAX_FIELDS:
            self._values.clear()
        self._values[field_id] = (value, self._clock() + self._ttl)

    def forget(self, field_ids: Iterable[str]) -> None:
        for field_id in field_ids:
            self._values.pop(field_id, None)
