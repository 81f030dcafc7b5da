"""Conversation sessions: turns of one field separated by less than ``SESSION_GAP`` of
silence belong to one session. Sessions are numbered when turns are stored, so a search
reads a hit's session as one value instead of walking the turns around it."""

from __future__ import annotations

from collections import Counter
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


def joined_sessions(
    turns: Sequence[tuple[datetime, int]], *, fresh_from: int, gap: timedelta = SESSION_GAP
) -> dict[int, int]:
    """Sessions to relabel once turns were stored before or between others (history sent out
    of order): ``turns`` are (time, session) in turn order, around the new ones. Turns no
    more than ``gap`` apart are one session, as if they had arrived in order: sessions
    joined that way take one label, that of the first session stored before (labels below
    ``fresh_from``), or else the first new one. Returns {old label: new label}.

    A label seen in two runs of turns more than ``gap`` apart (a turn moved in time keeps
    its session) is never relabelled, as relabelling goes by label and would join the runs:
    the other sessions of its run take its label instead."""
    runs: list[list[int]] = []
    previous: datetime | None = None
    for at, session in turns:
        if previous is None or at - previous > gap:
            runs.append([])
        if session not in runs[-1]:
            runs[-1].append(session)
        previous = at
    seen = Counter(label for labels in runs for label in labels)
    relabel: dict[int, int] = {}
    for labels in runs:
        if len(labels) < 2:
            continue
        fixed = [label for label in labels if seen[label] > 1]
        stored = [label for label in labels if label < fresh_from]
        keep = (fixed or stored or labels)[0]
        relabel.update((label, keep) for label in labels if label != keep and seen[label] == 1)
    return relabel
