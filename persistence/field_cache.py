"""Facts about a field that searches read often and that change only with its writes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable
from typing import Generic, TypeVar

_T = TypeVar("_T")

# Values kept; past this the cache starts over.
MAX_FIELDS = 100_000
# PostgreSQL: the channel on which a committed write names the fields whose memories it
# changed, so that every process drops what it kept of them (persistence/event_fanout.py
# listens; the unit of work sends it in the writing transaction).
FIELDS_CHANGED = "memoria_fields"
# A payload naming more fields than fit under PostgreSQL's 8000-byte NOTIFY limit says
# "every field" instead.
_PAYLOAD_MAX = 7_000
_EVERY_FIELD = "*"


def changed_fields_payload(field_ids: Collection[str]) -> str:
    """The ``FIELDS_CHANGED`` payload naming ``field_ids`` (see :func:`fields_named`)."""
    payload = json.dumps(sorted(field_ids))
    return payload if len(payload) <= _PAYLOAD_MAX else json.dumps(_EVERY_FIELD)


def fields_named(payload: str) -> list[str] | None:
    """The field ids a ``FIELDS_CHANGED`` payload names; None for every field (also for a
    payload that cannot be read: dropping everything is the safe reading)."""
    try:
        named = json.loads(payload)
    except ValueError:
        return None
    if isinstance(named, list) and all(isinstance(f, str) for f in named):
        return named
    return None


class FieldCache(Generic[_T]):
    """One value per field (how its vectors are searched, how many memories it holds),
    shared by a database's units of work: kept for ``ttl`` seconds or until a committed
    change to the field's memories (:meth:`forget`): this process's, from the unit of work,
    or another's, from its ``FIELDS_CHANGED`` notification.

    A notification arrives a few milliseconds after its commit, and one missed while the
    listening connection was down is covered by :meth:`clear` on reconnecting and by the
    expiry. So only what tolerates that much staleness belongs here: a choice of plan, or a
    statistic a ranking weighs."""

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

    def clear(self) -> None:
        self._values.clear()
