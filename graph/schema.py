"""The executable schema and its SDL export (``schema.graphql`` is checked for drift)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types

from graph.chat import ChatMutation, ChatQuery, ChatSubscription
from graph.executor import EventStableExecutor
from graph.extensions import ErrorCodes, OperationScope
from graph.limits import OperationLimits
from graph.mfa import MfaMutation
from graph.mutations import Mutation as CoreMutation
from graph.patterns import PatternMutation, PatternQuery
from graph.queries import Query as CoreQuery
from graph.rate_limits import RequestBudgets
from graph.sources import SourceMutation, SourceQuery
from graph.stats import StatsQuery
from graph.webhooks import WebhookMutation, WebhookQuery

# Each capability contributes its own root types; they are merged into one schema here.
QUERIES: tuple[type, ...] = (
    CoreQuery,
    ChatQuery,
    PatternQuery,
    StatsQuery,
    WebhookQuery,
    SourceQuery,
)
MUTATIONS: tuple[type, ...] = (
    CoreMutation,
    ChatMutation,
    MfaMutation,
    PatternMutation,
    WebhookMutation,
    SourceMutation,
)
SUBSCRIPTIONS: tuple[type, ...] = (ChatSubscription,)


class MemoriaSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorCodes already logged the unexpected ones with their tracebacks; domain errors
        # are the client's business and must not flood the log (nor leak secrets into it).
        return None


def build_schema(*, observers: Sequence[type[SchemaExtension]] = ()) -> strawberry.Schema:
    """``observers`` run outermost, around everything else (metrics, for one)."""
    return MemoriaSchema(
        query=merge_types("Query", QUERIES),
        mutation=merge_types("Mutation", MUTATIONS),
        subscription=merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None,
        execution_context_class=EventStableExecutor,  # cheap per-event subscription execution
        extensions=[
            *observers,
            ErrorCodes,
            # Depth/alias/token limits with rules built once, so parsing and validation
            # are cached (bounded) instead of redone for every operation.
            OperationLimits,
            OperationScope,
            RequestBudgets,  # the domain's request budgets, per root field (as REST)
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
