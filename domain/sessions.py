"""Conversation sessions: turns of one field separated by less than ``SESSION_GAP`` of
silence belong to one session. Sessions are numbered when turns are stored, so a search
reads a hit's session as one value instead of walking the turns around it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

SESSION_GAP = timedelta(hours=4)


def number_sessions(
    times: Sequence[datetime],
    *,
    before: tuple[datetime, int] | None,
    next_session: int,
    gap: timedelta = SESSION_GAP,
) -> tuple[list[int], int]:
    """Session numbers for turns at ``times`` (in turn order), continuing from the turn just
    before the first of them (``before``: its time and session) when it is close enough.
    New sessions take numbers from ``next_session`` on. Returns the numbers and the next
    unused number."""
    numbers: list[int] = []
    previous = before
    for at in times:
        if previous is not None and at - previous[0] <= gap:
            session = previous[1]
        else:
            session = next_session
            next_session += 1
        numbers.append(session)
        previous = (at, session)
    return numbers, next_session
