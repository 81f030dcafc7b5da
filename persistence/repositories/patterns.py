"""Patterns, their history, and the request observations that reveal repeated requests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select

from domain.patterns import (
    Pattern,
    PatternChange,
    PatternChangeKind,
    PatternKind,
    PatternStatus,
    PatternTrigger,
    RequestObservation,
    TriggerType,
)
from persistence.session import Transaction
from persistence.tables.patterns import pattern_history, pattern_observations, patterns

ACTIVE = PatternStatus.ACTIVE.value


# Read on every chat turn (pattern matching): built once, see persistence/repositories/users.py.
_ACTIVE = (
    select(patterns)
    .where(patterns.c.user_id == bindparam("user_id"), patterns.c.status == ACTIVE)
    .order_by(patterns.c.created_at, patterns.c.id)
)


def _triggers(raw: Any) -> list[PatternTrigger]:
    return [
        PatternTrigger(TriggerType(t["type"]), t["pattern"], float(t.get("threshold") or 0.0))
        for t in raw or []
    ]


def _pattern(row: Any) -> Pattern:
    return Pattern(
        id=row.id,
        user_id=row.user_id,
        kind=PatternKind(row.kind),
        slot=row.slot,
        value=row.value,
        polarity=row.polarity,
        name=row.name,
        description=row.description,
        triggers=_triggers(row.triggers),
        evidence=list(row.evidence or []),
        confidence=row.confidence,
        usage_count=row.usage_count,
        last_used=row.last_used,
        status=PatternStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        vector=[float(x) for x in row.vector or []],
    )


def _values(p: Pattern) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "kind": p.kind.value,
        "slot": p.slot[:200],
        "value": p.value,
        "polarity": p.polarity,
        "name": p.name[:200],
        "description": p.description,
        "triggers": [
            {"type": t.type.value, "pattern": t.pattern, "threshold": t.threshold}
            for t in p.triggers
        ],
        "evidence": list(p.evidence),
        "confidence": p.confidence,
        "usage_count": p.usage_count,
        "last_used": p.last_used,
        "status": p.status.value,
        "vector": [round(float(x), 6) for x in p.vector],
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


class SqlPatternRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, pattern: Pattern) -> None:
        await self._tx.write(patterns.insert().values(id=pattern.id, **_values(pattern)))

    async def update(self, pattern: Pattern) -> None:
        await self._tx.write(
            patterns.update()
            .where(patterns.c.id == pattern.id, patterns.c.user_id == pattern.user_id)
            .values(**_values(pattern))
        )

    async def delete(self, pattern_id: str, *, user_id: str) -> bool:
        result = await self._tx.write(
            patterns.delete().where(patterns.c.id == pattern_id, patterns.c.user_id == user_id)
        )
        return bool(result.rowcount)

    async def get(self, pattern_id: str, *, user_id: str) -> Pattern | None:
        stmt = select(patterns).where(patterns.c.id == pattern_id, patterns.c.user_id == user_id)
        row = (await self._tx.read(stmt)).first()
        return _pattern(row) if row else None

    async def active(self, *, user_id: str) -> list[Pattern]:
        return [_pattern(r) for r in await self._tx.read(_ACTIVE, {"user_id": user_id})]

    def _scope(self, user_id: str) -> Any:
        return and_(patterns.c.user_id == user_id, patterns.c.status == ACTIVE)

    async def page(
        self, *, user_id: str, first: int, after: str | None
    ) -> tuple[list[Pattern], bool, int]:
        scope = self._scope(user_id)
        total = int(
            (
                await self._tx.read(select(func.count()).select_from(patterns).where(scope))
            ).scalar_one()
        )
        stmt = select(patterns).where(scope)
        if after:
            anchor = (
                await self._tx.read(
                    select(patterns.c.created_at).where(
                        patterns.c.user_id == user_id, patterns.c.id == after
                    )
                )
            ).first()
            if anchor is not None:
                at = anchor.created_at
                stmt = stmt.where(
                    or_(
                        patterns.c.created_at > at,
                        and_(patterns.c.created_at == at, patterns.c.id > after),
                    )
                )
        rows = list(
            await self._tx.read(
                stmt.order_by(patterns.c.created_at, patterns.c.id).limit(first + 1)
            )
        )
        return [_pattern(r) for r in rows[:first]], len(rows) > first, total

    async def slice(self, *, user_id: str, offset: int, limit: int) -> tuple[list[Pattern], int]:
        scope = self._scope(user_id)
        total = int(
            (
                await self._tx.read(select(func.count()).select_from(patterns).where(scope))
            ).scalar_one()
        )
        stmt = (
            select(patterns)
            .where(scope)
            .order_by(patterns.c.created_at, patterns.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_pattern(r) for r in await self._tx.read(stmt)], total

    async def add_change(self, change: PatternChange) -> None:
        await self._tx.write(
            pattern_history.insert().values(
                id=change.id,
                pattern_id=change.pattern_id,
                user_id=change.user_id,
                change=change.change.value,
                old_description=change.old_description,
                new_description=change.new_description,
                message_id=change.message_id,
                at=change.at,
            )
        )

    async def history(self, pattern_id: str, *, user_id: str) -> list[PatternChange]:
        stmt = (
            select(pattern_history)
            .where(pattern_history.c.pattern_id == pattern_id, pattern_history.c.user_id == user_id)
            .order_by(pattern_history.c.at, pattern_history.c.id)
        )
        return [
            PatternChange(
                id=r.id,
                pattern_id=r.pattern_id,
                user_id=r.user_id,
                change=PatternChangeKind(r.change),
                old_description=r.old_description,
                new_description=r.new_description,
                message_id=r.message_id,
                at=r.at,
            )
            for r in await self._tx.read(stmt)
        ]

    async def mark_used(self, pattern_ids: Sequence[str], *, user_id: str, at: datetime) -> None:
        if not pattern_ids:
            return
        await self._tx.write(
            patterns.update()
            .where(patterns.c.id.in_(list(pattern_ids)), patterns.c.user_id == user_id)
            .values(usage_count=patterns.c.usage_count + 1, last_used=at)
        )

    async def observe(self, observation: RequestObservation) -> None:
        await self._tx.write(
            pattern_observations.insert().values(
                id=observation.id,
                user_id=observation.user_id,
                message_id=observation.message_id,
                text=observation.text,
                vector=[round(float(x), 6) for x in observation.vector],
                at=observation.at,
            )
        )

    async def recent_observations(self, *, user_id: str, limit: int) -> list[RequestObservation]:
        stmt = (
            select(pattern_observations)
            .where(pattern_observations.c.user_id == user_id)
            .order_by(pattern_observations.c.at.desc(), pattern_observations.c.id.desc())
            .limit(limit)
        )
        return [
            RequestObservation(
                id=r.id,
                user_id=r.user_id,
                message_id=r.message_id,
                text=r.text,
                vector=[float(x) for x in r.vector or []],
                at=r.at,
            )
            for r in await self._tx.read(stmt)
        ]
