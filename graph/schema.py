"""The executable schema and its SDL export (``schema.graphql`` is checked for drift)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from graph.extensions import ErrorCodes, OperationScope
from graph.mutations import Mutation
from graph.queries import Query


class MemoriaSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorCodes already logged the unexpected ones with their tracebacks; domain errors
        # are the client's business and must not flood the log (nor leak secrets into it).
        return None


def build_schema() -> strawberry.Schema:
    return MemoriaSchema(
        query=Query,
        mutation=Mutation,
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
