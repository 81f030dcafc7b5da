"""Who said a conversation turn, and which speakers a query names (the speaker prior of
:mod:`domain.retrieval`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from domain.entities import Memory
from domain.retrieval.query_analysis import content_terms

# A transcript line's speaker label: one to three capitalised words and a colon at the start
# ("Caroline: ...", "Dr. Smith: ..."). A label no query names ("Note: ...") is simply never
# preferred.
_LABEL = re.compile(r"([A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}):\s")


def label_of(content: str) -> str | None:
    """The speaker label ``content`` starts with (see ``_LABEL``), or None."""
    found = _LABEL.match(content)
    return found.group(1) if found else None


def speaker_of(memory: Memory) -> str | None:
    """Who said ``memory``: its ``speaker`` (given by the client), else the label its content
    starts with (see ``_LABEL``); None when neither says."""
    if memory.speaker and memory.speaker.strip():
        return memory.speaker.strip()
    return label_of(memory.content)


def named_speakers(terms: Sequence[str], speakers: set[str]) -> set[str]:
    """The ``speakers`` whose every content word is among the query's ``terms``, or none
    when that is all of them: a question naming everyone prefers no one."""
    asked = set(terms)
    named = set()
    for speaker in speakers:
        words = content_terms(speaker)
        if words and all(w in asked for w in words):
            named.add(speaker)
    return named if len(named) < len(speakers) else set()
