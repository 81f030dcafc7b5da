"""LLM providers, models, users' own keys, usage records and balance charges."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from domain.llm import LlmModel, LlmProvider, UsageRecord, UserLlmConfig
from persistence.session import Transaction
from persistence.tables.accounts import users
from persistence.tables.llm import llm_models, llm_providers, usage_records, user_llm_configs


def _provider(row: Any) -> LlmProvider:
    return LlmProvider(
        id=row.id,
        name=row.name,
        kind=row.kind,
        api_endpoint=row.api_endpoint,
        api_key_encrypted=row.api_key_encrypted,
        created_at=row.created_at,
        enabled=row.enabled,
    )


def _model(row: Any) -> LlmModel:
    return LlmModel(
        id=row.id,
        provider_id=row.provider_id,
        name=row.name,
        context_window=row.context_window,
        input_price_micros_per_m=row.input_price_micros_per_m,
        output_price_micros_per_m=row.output_price_micros_per_m,
        created_at=row.created_at,
        status=row.status,
    )


def _config(row: Any) -> UserLlmConfig:
    return UserLlmConfig(
        id=row.id,
        user_id=row.user_id,
        provider_id=row.provider_id,
        api_key_encrypted=row.api_key_encrypted,
        key_hint=row.key_hint,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _usage(row: Any) -> UsageRecord:
    return UsageRecord(
        id=row.id,
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        model=row.model,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost_micros=row.cost_micros,
        incomplete=row.incomplete,
        created_at=row.created_at,
    )


# Written and read on every chat turn: built once, see persistence/repositories/users.py.
_ADD_USAGE = usage_records.insert()
_USER_CONFIG = select(user_llm_configs).where(
    user_llm_configs.c.user_id == bindparam("user_id"),
    user_llm_configs.c.provider_id == bindparam("provider_id"),
)


class SqlLlmCatalogRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add_provider(self, provider: LlmProvider) -> None:
        p = provider
        await self._tx.write(
            llm_providers.insert().values(
                id=p.id,
                name=p.name,
                kind=p.kind,
                api_endpoint=p.api_endpoint,
                api_key_encrypted=p.api_key_encrypted,
                enabled=p.enabled,
                created_at=p.created_at,
            )
        )

    async def providers(self) -> list[LlmProvider]:
        stmt = select(llm_providers).order_by(llm_providers.c.created_at, llm_providers.c.id)
        return [_provider(r) for r in await self._tx.read(stmt)]

    async def provider(self, provider_id: str) -> LlmProvider | None:
        stmt = select(llm_providers).where(llm_providers.c.id == provider_id)
        row = (await self._tx.read(stmt)).first()
        return _provider(row) if row else None

    async def provider_by_name(self, name: str) -> LlmProvider | None:
        stmt = select(llm_providers).where(llm_providers.c.name == name)
        row = (await self._tx.read(stmt)).first()
        return _provider(row) if row else None

    async def add_model(self, model: LlmModel) -> None:
        m = model
        await self._tx.write(
            llm_models.insert().values(
                id=m.id,
                provider_id=m.provider_id,
                name=m.name,
                context_window=m.context_window,
                input_price_micros_per_m=m.input_price_micros_per_m,
                output_price_micros_per_m=m.output_price_micros_per_m,
                status=m.status,
                created_at=m.created_at,
            )
        )

    async def models(self) -> list[LlmModel]:
        stmt = select(llm_models).order_by(llm_models.c.created_at, llm_models.c.name)
        return [_model(r) for r in await self._tx.read(stmt)]

    async def model_by_name(self, name: str) -> LlmModel | None:
        row = (await self._tx.read(select(llm_models).where(llm_models.c.name == name))).first()
        return _model(row) if row else None

    async def user_config(self, *, user_id: str, provider_id: str) -> UserLlmConfig | None:
        params = {"user_id": user_id, "provider_id": provider_id}
        row = (await self._tx.read(_USER_CONFIG, params)).first()
        return _config(row) if row else None

    async def save_user_config(self, config: UserLlmConfig) -> None:
        c = config
        table = user_llm_configs
        result = await self._tx.write(
            table.update()
            .where(table.c.user_id == c.user_id, table.c.provider_id == c.provider_id)
            .values(
                api_key_encrypted=c.api_key_encrypted, key_hint=c.key_hint, updated_at=c.updated_at
            )
        )
        if result.rowcount == 0:
            await self._tx.write(
                table.insert().values(
                    id=c.id,
                    user_id=c.user_id,
                    provider_id=c.provider_id,
                    api_key_encrypted=c.api_key_encrypted,
                    key_hint=c.key_hint,
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                )
            )


class SqlSpendRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add_usage(self, record: UsageRecord) -> None:
        r = record
        await self._tx.write(
            _ADD_USAGE,
            {
                "id": r.id,
                "user_id": r.user_id,
                "conversation_id": r.conversation_id,
                "message_id": r.message_id,
                "model": r.model,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cost_micros": r.cost_micros,
                "incomplete": r.incomplete,
                "created_at": r.created_at,
            },
        )

    async def usage(self, *, user_id: str, limit: int = 100) -> list[UsageRecord]:
        stmt = (
            select(usage_records)
            .where(usage_records.c.user_id == user_id)
            .order_by(usage_records.c.created_at.desc(), usage_records.c.id.desc())
            .limit(limit)
        )
        return [_usage(r) for r in await self._tx.read(stmt)]

    async def charge(self, *, user_id: str, micros: int) -> None:
        await self._tx.write(
            users.update()
            .where(users.c.id == user_id)
            .values(balance_micros=users.c.balance_micros - micros)
        )
