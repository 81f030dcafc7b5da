"""Operation limits still hold with cached parsing and validation (graph/limits.py)."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from graph import limits
from graph.limits import OperationLimits
from graph.schema import build_schema


@strawberry.type
class Node:
    @strawberry.field
    def child(self) -> Node:
        return Node()


@strawberry.type
class DeepQuery:
    @strawberry.field
    def node(self) -> Node:
        return Node()


def _nested(depth: int) -> str:
    inner = "__typename"
    for _ in range(depth - 1):
        inner = f"child {{ {inner} }}"
    return f"{{ node {{ {inner} }} }}"


async def _run(query: str) -> Any:
    schema = build_schema()
    # No resolver here needs services: OperationScope only opens a unit of work on demand.
    return await schema.execute(query, context_value={"deps": object()})


async def test_a_valid_document_runs_again_from_the_caches() -> None:
    query = "{ __typename }"
    for _ in range(3):
        result = await _run(query)
        assert result.errors is None
        assert result.data == {"__typename": "Query"}
    assert any(key[0] == query for key in limits._DOCUMENTS._items)


async def test_too_deep_is_refused_every_time() -> None:
    schema = strawberry.Schema(query=DeepQuery, extensions=[OperationLimits])
    ok = await schema.execute(_nested(limits.MAX_DEPTH))
    assert ok.errors is None
    for _ in range(2):  # a refused document is never cached as valid
        result = await schema.execute(_nested(limits.MAX_DEPTH + 1))
        assert result.errors, result
        assert "exceeds maximum operation depth" in result.errors[0].message


async def test_too_many_aliases_are_refused() -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(limits.MAX_ALIASES + 1))
    result = await _run(f"{{ {fields} }}")
    assert result.errors
    assert "aliases" in result.errors[0].message.lower()


async def test_too_many_tokens_and_syntax_errors_are_reported() -> None:
    fields = " ".join("__typename" for _ in range(limits.MAX_TOKENS + 10))
    too_long = await _run(f"{{ {fields} }}")
    assert too_long.errors
    assert "token" in too_long.errors[0].message.lower()
    broken = await _run("{ __typename ")
    assert broken.errors
    assert "Syntax Error" in broken.errors[0].message


@pytest.mark.parametrize("size", [1, 3])
def test_the_caches_are_bounded(size: int) -> None:
    lru = limits._Lru(size)
    for i in range(10):
        lru.put(i, True)
    assert len(lru._items) == size
    assert lru.get(9) is True
    assert lru.get(0) is None
