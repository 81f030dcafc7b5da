"""Procedural memory: learn patterns from user messages, match them to a turn, keep history.

``observe_message`` runs in the background after a message is stored (never inside a chat
reply). It applies :mod:`domain.services.pattern_rules` detections to the user's active
patterns: the same statement again reinforces, a contradicting one on the same slot
updates, a withdrawal retires — each change kept in the pattern's history. Requests that
keep coming back (cosine of their embeddings above a threshold, ``repeat_min`` times)
become ``repeated_request`` patterns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.clock import Clock
from domain.entities import Actor, Message, MessageRole, new_id
from domain.errors import NotFound
from domain.events import PATTERN_DETECTED, DomainEvent
from domain.patterns import (
    Pattern,
    PatternChange,
    PatternChangeKind,
    PatternKind,
    PatternMatch,
    PatternStatus,
    PatternTrigger,
    RequestObservation,
    TriggerType,
)
from domain.policy import Limits, check_page_size
from domain.ports import Embedder, UnitOfWork
from domain.services.context import ProceduralHint
from domain.services.pattern_rules import detect, is_request
from domain.services.pattern_text import Detection, content_words, slot_key
from domain.services.pattern_triggers import cosine, trigger_score

EXCLUSIVE_PREFIXES = ("reply_", "tone", "address_as", "favourite:", "do:")
CATEGORY_SLOTS = ("prefer:programming_language", "prefer:editor", "prefer:operating_system")


def _overlap(a: str, b: str) -> bool:
    return bool(set(content_words(a)) & set(content_words(b)))


def _exclusive(slot: str) -> bool:
    return slot.startswith(EXCLUSIVE_PREFIXES) or slot in CATEGORY_SLOTS


def _reinforced(confidence: float) -> float:
    return round(min(0.99, 1 - (1 - confidence) * 0.6), 4)


@dataclass(frozen=True, slots=True)
class PatternSettings:
    repeat_threshold: float = 0.8  # cosine at which two requests count as the same request
    repeat_min: int = 3
    semantic_threshold: float = 0.5
    observation_window: int = 200
    max_evidence: int = 50


class PatternService:
    def __init__(
        self,
        *,
        embedder: Embedder,
        clock: Clock,
        limits: Limits,
        settings: PatternSettings | None = None,
    ) -> None:
        self._embedder = embedder
        self._clock = clock
        self._limits = limits
        self._settings = settings or PatternSettings()

    # ------------------------------------------------------------------ reading

    async def page(
        self, *, uow: UnitOfWork, actor: Actor, first: int, after: str | None
    ) -> tuple[list[Pattern], bool, int]:
        check_page_size(first, limits=self._limits)
        return await uow.patterns.page(user_id=actor.user_id, first=first, after=after)

    async def numbered_page(
        self, *, uow: UnitOfWork, actor: Actor, page: int, page_size: int
    ) -> tuple[list[Pattern], int]:
        check_page_size(page_size, limits=self._limits, name="pageSize")
        offset = (max(page, 1) - 1) * page_size
        return await uow.patterns.slice(user_id=actor.user_id, offset=offset, limit=page_size)

    async def get(self, *, uow: UnitOfWork, actor: Actor, pattern_id: str) -> Pattern:
        pattern = await uow.patterns.get(pattern_id, user_id=actor.user_id)
        if pattern is None:
            raise NotFound("Pattern not found")
        return pattern

    async def history(
        self, *, uow: UnitOfWork, actor: Actor, pattern_id: str
    ) -> list[PatternChange]:
        changes = await uow.patterns.history(pattern_id, user_id=actor.user_id)
        if not changes:
            raise NotFound("Pattern not found")
        return changes

    async def delete(self, *, uow: UnitOfWork, actor: Actor, pattern_id: str) -> bool:
        pattern = await self.get(uow=uow, actor=actor, pattern_id=pattern_id)
        await uow.patterns.delete(pattern.id, user_id=actor.user_id)
        await self._log(uow, pattern, PatternChangeKind.DELETED, pattern.description, None, None)
        return True

    # ------------------------------------------------------------------ matching

    async def match(
        self, *, uow: UnitOfWork, actor: Actor, text: str, limit: int = 5
    ) -> list[PatternMatch]:
        """Active patterns whose trigger fires on ``text``, best first."""
        patterns = await uow.patterns.active(user_id=actor.user_id)
        if not patterns or not text.strip():
            return []
        vector: Sequence[float] | None = None
        if any(t.type is TriggerType.SEMANTIC for p in patterns for t in p.triggers):
            vector = list((await self._embedder.embed([text]))[0])
        lowered = text.lower()
        found: list[PatternMatch] = []
        for pattern in patterns:
            best: tuple[float, PatternTrigger] | None = None
            for trigger in pattern.triggers:
                score = trigger_score(
                    trigger,
                    pattern,
                    lowered,
                    vector,
                    default_threshold=self._settings.semantic_threshold,
                )
                if score > 0 and (best is None or score > best[0]):
                    best = (score, trigger)
            if best is not None:
                found.append(PatternMatch(pattern=pattern, score=best[0], trigger=best[1]))
        found.sort(key=lambda m: m.score * m.pattern.confidence, reverse=True)
        return found[:limit]

    async def triggered(
        self, *, uow: UnitOfWork, actor: Actor, text: str, limit: int = 5
    ) -> list[PatternMatch]:
        """``match`` and count the use: what the ProceduralMemory context layer calls."""
        matches = await self.match(uow=uow, actor=actor, text=text, limit=limit)
        if matches:
            now = self._clock.now()
            await uow.patterns.mark_used(
                [m.pattern.id for m in matches], user_id=actor.user_id, at=now
            )
            for m in matches:
                m.pattern.usage_count += 1
                m.pattern.last_used = now
        return matches

    # ------------------------------------------------------------------ learning

    async def observe_message(
        self, *, uow: UnitOfWork, actor: Actor, message: Message
    ) -> list[Pattern]:
        """Learn from one stored message; returns the patterns that changed."""
        if message.role is not MessageRole.USER:
            return []
        changed: list[Pattern] = []
        for detection in detect(message.content):
            changed += await self._apply(uow, actor, detection, message)
        if is_request(message.content):
            repeated = await self._repeated(uow, actor, message)
            if repeated is not None:
                changed.append(repeated)
        return changed

    async def _apply(
        self, uow: UnitOfWork, actor: Actor, d: Detection, message: Message
    ) -> list[Pattern]:
        active = await uow.patterns.active(user_id=actor.user_id)
        same_slot = [p for p in active if p.slot == d.slot]
        if d.retire:
            targets = [
                p
                for p in active
                if p.kind is not PatternKind.REPEATED_REQUEST
                and _overlap(p.value, d.value)
                and (p.slot == d.slot or p.kind is PatternKind.PREFERENCE)
            ]
            for target in targets:
                await self._retire(uow, target, message)
            return targets
        overlapping = [p for p in same_slot if _overlap(p.value, d.value)]
        if overlapping:
            target = overlapping[0]
            if target.polarity == d.polarity:
                return [await self._reinforce(uow, target, message)]
            return [await self._update(uow, target, d, message)]
        same_polarity = [p for p in same_slot if p.polarity == d.polarity]
        if same_polarity and _exclusive(d.slot):
            return [await self._update(uow, same_polarity[0], d, message)]
        return [await self._create(uow, actor, d, message)]

    async def _vector(self, text: str) -> list[float]:
        return [float(x) for x in (await self._embedder.embed([text]))[0]]

    async def _create(
        self, uow: UnitOfWork, actor: Actor, d: Detection, message: Message
    ) -> Pattern:
        now = self._clock.now()
        vector = await self._vector(f"{d.value} {' '.join(d.keywords)}")
        triggers = [
            *list(d.triggers),
            PatternTrigger(TriggerType.SEMANTIC, d.value, self._settings.semantic_threshold),
        ]
        pattern = Pattern(
            id=new_id(),
            user_id=actor.user_id,
            kind=d.kind,
            slot=d.slot,
            value=d.value,
            polarity=d.polarity,
            name=d.name,
            description=d.description,
            triggers=triggers,
            evidence=[message.id],
            confidence=d.confidence,
            usage_count=0,
            last_used=None,
            status=PatternStatus.ACTIVE,
            created_at=now,
            updated_at=now,
            vector=vector,
        )
        await uow.patterns.add(pattern)
        await self._log(uow, pattern, PatternChangeKind.DETECTED, None, d.description, message.id)
        self._event(uow, pattern, PatternChangeKind.DETECTED, message.id)
        return pattern

    def _add_evidence(self, pattern: Pattern, message_id: str) -> None:
        if message_id not in pattern.evidence:
            pattern.evidence = ([*pattern.evidence, message_id])[-self._settings.max_evidence :]
        pattern.updated_at = self._clock.now()

    async def _reinforce(self, uow: UnitOfWork, pattern: Pattern, message: Message) -> Pattern:
        self._add_evidence(pattern, message.id)
        pattern.confidence = _reinforced(pattern.confidence)
        await uow.patterns.update(pattern)
        await self._log(
            uow, pattern, PatternChangeKind.REINFORCED, pattern.description, None, message.id
        )
        return pattern

    async def _update(
        self, uow: UnitOfWork, pattern: Pattern, d: Detection, message: Message
    ) -> Pattern:
        old = pattern.description
        pattern.value, pattern.polarity = d.value, d.polarity
        pattern.name, pattern.description = d.name, d.description
        pattern.triggers = [
            *list(d.triggers),
            PatternTrigger(TriggerType.SEMANTIC, d.value, self._settings.semantic_threshold),
        ]
        pattern.vector = await self._vector(f"{d.value} {' '.join(d.keywords)}")
        pattern.confidence = d.confidence
        self._add_evidence(pattern, message.id)
        await uow.patterns.update(pattern)
        await self._log(uow, pattern, PatternChangeKind.UPDATED, old, d.description, message.id)
        self._event(uow, pattern, PatternChangeKind.UPDATED, message.id)
        return pattern

    async def _retire(self, uow: UnitOfWork, pattern: Pattern, message: Message) -> None:
        pattern.status = PatternStatus.RETIRED
        self._add_evidence(pattern, message.id)
        await uow.patterns.update(pattern)
        await self._log(
            uow, pattern, PatternChangeKind.RETIRED, pattern.description, None, message.id
        )

    async def _repeated(self, uow: UnitOfWork, actor: Actor, message: Message) -> Pattern | None:
        s = self._settings
        vector = await self._vector(message.content)
        seen = await uow.patterns.recent_observations(
            user_id=actor.user_id, limit=s.observation_window
        )
        similar = [o for o in reversed(seen) if cosine(o.vector, vector) >= s.repeat_threshold]
        await uow.patterns.observe(
            RequestObservation(
                id=new_id(),
                user_id=actor.user_id,
                message_id=message.id,
                text=message.content[:500],
                vector=vector,
                at=message.created_at,
            )
        )
        if len(similar) + 1 < s.repeat_min:
            return None
        active = await uow.patterns.active(user_id=actor.user_id)
        for pattern in active:
            if (
                pattern.kind is PatternKind.REPEATED_REQUEST
                and cosine(pattern.vector, vector) >= s.repeat_threshold
            ):
                return await self._reinforce(uow, pattern, message)
        text = " ".join(message.content.split())[:160]
        keywords = content_words(text)[:3]
        detection = Detection(
            kind=PatternKind.REPEATED_REQUEST,
            slot=f"request:{slot_key(text)}",
            value=text,
            polarity=1,
            name=f"Repeated request: {text[:40]}",
            description=f"User repeatedly asks: {text}",
            confidence=min(0.9, 0.5 + 0.1 * (len(similar) + 1 - s.repeat_min)),
            triggers=[PatternTrigger(TriggerType.KEYWORD, " ".join(keywords[:2]))]
            if len(keywords) >= 2
            else [],
            keywords=keywords,
        )
        pattern = await self._create(uow, actor, detection, message)
        pattern.evidence = [*[o.message_id for o in similar][-s.max_evidence + 1 :], message.id]
        await uow.patterns.update(pattern)
        return pattern

    # ------------------------------------------------------------------ bookkeeping

    async def _log(
        self,
        uow: UnitOfWork,
        pattern: Pattern,
        kind: PatternChangeKind,
        old: str | None,
        new: str | None,
        message_id: str | None,
    ) -> None:
        await uow.patterns.add_change(
            PatternChange(
                id=new_id(),
                pattern_id=pattern.id,
                user_id=pattern.user_id,
                change=kind,
                old_description=old,
                new_description=new,
                message_id=message_id,
                at=self._clock.now(),
            )
        )

    def _event(
        self, uow: UnitOfWork, pattern: Pattern, change: PatternChangeKind, message_id: str
    ) -> None:
        uow.record(
            DomainEvent(
                name=PATTERN_DETECTED,
                user_id=pattern.user_id,
                at=self._clock.now(),
                payload={
                    "id": pattern.id,
                    "change": change.value,
                    "kind": pattern.kind.value,
                    "name": pattern.name,
                    "description": pattern.description,
                    "confidence": pattern.confidence,
                    "message_id": message_id,
                    "triggers": [
                        {"type": t.type.value, "pattern": t.pattern} for t in pattern.triggers
                    ],
                },
            )
        )


class ProceduralPatterns:
    """The ProceduralMemory layer of context assembly (``domain.services.context``'s
    ``PatternMatcher`` port): triggered patterns become hints, and their use is counted."""

    def __init__(self, patterns: PatternService) -> None:
        self._patterns = patterns

    async def match(
        self, *, uow: UnitOfWork, actor: Actor, query: str, limit: int
    ) -> list[ProceduralHint]:
        matches = await self._patterns.triggered(uow=uow, actor=actor, text=query, limit=limit)
        return [
            ProceduralHint(pattern_id=m.pattern.id, text=m.pattern.description) for m in matches
        ]
