"""Bad input gets the right ``extensions.code`` and a clear message, and writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import GraphQLClient, RunningServer
from sqlalchemy import func, select

from memoria.app import build_app
from memoria.settings import Settings
from persistence.tables.memories import memories, memory_history
from providers.embedders.hashing import HashingEmbedder

ADD_MANY = (
    """mutation($f: ID!, $i: [MemoryInput!]!) { addMemories(fieldId: $f, inputs: $i) { id } }"""
)
ADD_ONE = (
    """mutation($f: ID!, $c: String!) { addMemory(fieldId: $f, input: {content: $c}) { id } }"""
)


async def _count(server: RunningServer) -> tuple[int, int]:
    async with server.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(memories))).scalar_one()
        changes = (
            await conn.execute(select(func.count()).select_from(memory_history))
        ).scalar_one()
    return int(rows), int(changes)


async def _field(client: GraphQLClient) -> str:
    data = await client.data('mutation { createMemoryField(name: "f") { id } }')
    return str(data["createMemoryField"]["id"])


@pytest.mark.parametrize(
    ("query", "variables", "code", "message_part"),
    [
        (ADD_ONE, {"c": ""}, "BAD_USER_INPUT", "content is required"),
        (ADD_ONE, {"c": "   \n "}, "BAD_USER_INPUT", "content is required"),
        (ADD_ONE, {"c": 42}, "BAD_USER_INPUT", "String"),
        (ADD_MANY, {"i": []}, "BAD_USER_INPUT", "at least one"),
        (ADD_MANY, {"i": [{"content": "ok"}, {"content": ""}]}, "BAD_USER_INPUT", "content"),
        (ADD_MANY, {"i": [{"content": "ok", "metadata": [1, 2]}]}, "BAD_USER_INPUT", "metadata"),
        (ADD_MANY, {"i": [{"nope": "x"}]}, "BAD_USER_INPUT", "nope"),
        (ADD_ONE, {"c": "x" * 33_000}, "BAD_USER_INPUT", "too long"),
        (ADD_ONE, {"c": "half a pair \ud800 here"}, "BAD_USER_INPUT", "not valid unicode"),
        (ADD_MANY, {"i": [{"content": "ok"}, {"content": "\udfff"}]}, "BAD_USER_INPUT", "unicode"),
    ],
)
async def test_invalid_memory_input_writes_nothing(
    gql: GraphQLClient,
    server: RunningServer,
    query: str,
    variables: dict[str, object],
    code: str,
    message_part: str,
) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    before = await _count(server)
    error = await alice.error(query, {"f": field, **variables})
    assert error.code == code
    assert message_part.lower() in error.errors[0]["message"].lower()
    assert await _count(server) == before


async def test_unknown_ids_are_not_found(gql: GraphQLClient, server: RunningServer) -> None:
    alice = await gql.register("alice")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await alice.error(ADD_ONE, {"f": unknown, "c": "hello"})).code == "NOT_FOUND"
    assert (
        await alice.error("query($id: ID!) { memoryHistory(id: $id) { id } }", {"id": unknown})
    ).code == "NOT_FOUND"
    search = await alice.error(
        'query($f: ID!) { searchMemories(fieldId: $f, query: "x") { score } }', {"f": unknown}
    )
    assert search.code == "NOT_FOUND"
    assert (
        await alice.error('{ searchMemories(namespace: "nope", query: "x") { score } }')
    ).code == ("NOT_FOUND")
    assert await _count(server) == (0, 0)


async def test_search_arguments_are_checked(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    q = 'query($f: ID!, $k: Int) { searchMemories(fieldId: $f, query: "x", topK: $k) { score } }'
    assert (await alice.error(q, {"f": field, "k": 0})).code == "BAD_USER_INPUT"
    assert (await alice.error(q, {"f": field, "k": 10_000})).code == "BAD_USER_INPUT"
    # Without a field (all of the caller's fields) the arguments are checked all the same.
    assert (await alice.error('{ searchMemories(query: " ") { score } }')).code == "BAD_USER_INPUT"
    assert (await alice.error('{ searchMemories(query: "x", topK: 0) { score } }')).code == (
        "BAD_USER_INPUT"
    )
    blank = '{ searchMemories(namespace: "f", query: "  ") { score } }'
    assert (await alice.error(blank)).code == "BAD_USER_INPUT"


async def test_registration_input_is_validated(gql: GraphQLClient) -> None:
    q = """mutation($u: String!, $e: String!, $p: String!) {
      register(input: {username: $u, email: $e, password: $p}) { accessToken } }"""
    for variables in (
        {"u": "", "e": "a@example.com", "p": "long-enough-1"},
        {"u": "bob", "e": "not-an-email", "p": "long-enough-1"},
        {"u": "bob", "e": "bob@example.com", "p": "short"},
    ):
        assert (await gql.error(q, variables)).code == "BAD_USER_INPUT"


async def test_a_failing_operation_rolls_back_earlier_fields(
    gql: GraphQLClient, server: RunningServer
) -> None:
    """Mutations in one operation share one transaction: the error undoes the first one."""
    alice = await gql.register("alice")
    field = await _field(alice)
    error = await alice.error(
        """mutation($f: ID!) {
          first: addMemory(fieldId: $f, input: {content: "kept?"}) { id }
          second: addMemory(fieldId: $f, input: {content: ""}) { id }
        }""",
        {"f": field},
    )
    assert error.code == "BAD_USER_INPUT"
    assert await _count(server) == (0, 0)


async def test_content_limit_is_configurable(settings: Settings) -> None:
    small = settings.with_(limits=replace(settings.limits, max_content_chars=10))
    running = await RunningServer(build_app(small, embedder=HashingEmbedder())).start()
    try:
        client = await GraphQLClient(running.url).register("alice")
        field = await _field(client)
        error = await client.error(ADD_ONE, {"f": field, "c": "eleven chars"})
        assert "too long" in error.errors[0]["message"]
        assert (await client.data(ADD_ONE, {"f": field, "c": "ten chars!"}))["addMemory"]["id"]
    finally:
        await running.stop()


async def test_nul_characters_are_refused_inline_and_in_variables(
    gql: GraphQLClient, server: RunningServer
) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    inline = await alice.error(
        'mutation { addMemory(fieldId: "a\\u0000b", input: {content: "x"}) { id } }'
    )
    assert inline.code == "BAD_USER_INPUT"
    assert "NUL" in inline.errors[0]["message"]
    in_variable = await alice.error(ADD_ONE, {"f": field, "c": "before\x00after"})
    assert in_variable.code == "BAD_USER_INPUT"
    assert await _count(server) == (0, 0)
