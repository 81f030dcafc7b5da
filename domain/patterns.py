"""Procedural memory: behavioural patterns learned from a user's own messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class TriggerType(StrEnum):
    KEYWORD = "keyword"
    REGEX = "regex"
    SEMANTIC = "semantic"


class PatternKind(StrEnum):
    PREFERENCE = "preference"
    INSTRUCTION = "instruction"
    REPEATED_REQUEST = "repeated_request"


class PatternStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class PatternTrigger:
    """When the pattern applies: a keyword (word match), a regex, or semantic (cosine of the
    query against the pattern's description vector above ``threshold``)."""

    type: TriggerType
    pattern: str
    threshold: float = 0.0


@dataclass(slots=True)
class Pattern:
    id: str
    user_id: str
    kind: PatternKind
    slot: str  # what the pattern is about; a later statement on the same slot contradicts it
    value: str
    polarity: int  # +1 "do / like", -1 "don't / dislike"
    name: str
    description: str
    triggers: list[PatternTrigger]
    evidence: list[str]  # message ids
    confidence: float
    usage_count: int
    last_used: datetime | None
    status: PatternStatus
    created_at: datetime
    updated_at: datetime
    vector: list[float] = field(default_factory=list)


class PatternChangeKind(StrEnum):
    DETECTED = "DETECTED"
    REINFORCED = "REINFORCED"
    UPDATED = "UPDATED"
    RETIRED = "RETIRED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class PatternChange:
    """One entry of a pattern's history: what it said before and after, and why."""

    id: str
    pattern_id: str
    user_id: str
    change: PatternChangeKind
    old_description: str | None
    new_description: str | None
    message_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RequestObservation:
    """A request-like user message, kept to notice the same request coming back."""

    id: str
    user_id: str
    message_id: str
    text: str
    vector: list[float]
    at: datetime


@dataclass(frozen=True, slots=True)
class PatternMatch:
    pattern: Pattern
    score: float
    trigger: PatternTrigger
