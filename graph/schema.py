"""The executable schema and its SDL export (``schema.graphql`` is checked for drift)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

from graph.extensions import ErrorCodes, OperationScope
from graph.mutations import Mutation as CoreMutation
from graph.queries import Query as CoreQuery

# Each capability contributes its own root types; they are merged into one schema here.
QUERIES: tuple[type, ...] = (CoreQuery,)
MUTATIONS: tuple[type, ...] = (CoreMutation,)
SUBSCRIPTIONS: tuple[type, ...] = ()


class MemoriaSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorCodes already logged the unexpected ones with their tracebacks; domain errors
        # are the client's business and must not flood the log (nor leak secrets into it).
        return None


def build_schema() -> strawberry.Schema:
    return MemoriaSchema(
        query=merge_types("Query", QUERIES),
        mutation=merge_types("Mutation", MUTATIONS),
        subscription=merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None,
        extensions=[
            ErrorCodes,
            lambda: QueryDepthLimiter(max_depth=12),
            lambda: MaxAliasesLimiter(max_alias_count=30),
            lambda: MaxTokensLimiter(max_token_count=4000),
            OperationScope,
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
