"""Chat over GraphQL: memory reaches the upstream prompt, tokens stream in order over real
WebSockets (both protocols) and SSE, disconnects cancel upstream, failures are reported."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from chat_helpers import (  # noqa: F401  # fixtures are used by name
    CHAT,
    SEND,
    TransportWs,
    add_provider,
    chat_over_ws,
    chat_server_fixture,
    client_fixture,
    fake_llm_fixture,
    ws_url,
)
from conftest import GraphQLClient, RunningServer
from fake_llm import FakeLLM, Reply
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from domain.llm import EXTRACTIVE_MODEL

ADD_FIELD = """mutation($n: String!) { createMemoryField(name: $n) { id } }"""
ADD_MEMORY = (
    """mutation($f: ID!, $c: String!) { addMemory(fieldId: $f, input: {content: $c}) { id } }"""
)
CONVERSATION = (
    """mutation($f: ID) { createConversation(input: {title: "chat", fieldId: $f}) { id } }"""
)
MESSAGES = """query($id: ID!) { conversation(id: $id) { messages(first: 50) { edges { node {
  id role content incomplete model } } } } }"""


async def messages_of(user: GraphQLClient, conversation_id: str) -> list[dict[str, object]]:
    data = await user.data(MESSAGES, {"id": conversation_id})
    return [e["node"] for e in data["conversation"]["messages"]["edges"]]


async def test_stored_memory_reaches_upstream_prompt_and_turn_is_stored(
    client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    llm.script(Reply(tokens=["You ", "live ", "in ", "Porto."], prompt_tokens=30))
    await add_provider(client, url)
    alice = await client.register("alice")
    field = (await alice.data(ADD_FIELD, {"n": "personal"}))["createMemoryField"]["id"]
    memory = (
        await alice.data(ADD_MEMORY, {"f": field, "c": "Alice lives in Porto near the river"})
    )["addMemory"]["id"]
    conv = (await alice.data(CONVERSATION, {"f": field}))["createConversation"]["id"]
    result = (
        await alice.data(
            SEND, {"i": {"message": "Where does Alice live in Porto?", "conversationId": conv}}
        )
    )["sendMessage"]
    assert "Alice lives in Porto near the river" in llm.prompt_text()
    assert llm.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "Where does Alice live in Porto?",
    }
    assert result["message"]["content"] == "You live in Porto."
    assert result["message"]["model"] == "fake-gpt"
    assert result["usage"] == {"promptTokens": 30, "completionTokens": 4, "costMicros": 0}
    assert memory in result["memoryUsed"]["memoryIds"]
    assert result["memoryUsed"]["longTerm"] >= 1
    assert "api" in result["memoryUsed"]["sources"]
    stored = await messages_of(alice, conv)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Where does Alice live in Porto?"),
        ("assistant", "You live in Porto."),
    ]
    # The next turn carries the previous one as working memory.
    await alice.data(SEND, {"i": {"message": "And who am I?", "conversationId": conv}})
    roles = [m["role"] for m in llm.turns[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    # includeMemory: false leaves the long-term layer out.
    await alice.data(
        SEND, {"i": {"message": "Porto again?", "conversationId": conv, "includeMemory": False}}
    )
    assert "near the river" not in llm.prompt_text()


async def test_tokens_arrive_in_order_over_graphql_transport_ws(
    chat_server: RunningServer, client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    tokens = [f"w{i} " for i in range(40)]
    llm.script(Reply(tokens=tokens, delay=0.005))
    await add_provider(client, url)
    bob = await client.register("bob")
    events = await chat_over_ws(chat_server, str(bob.token), {"i": {"message": "count please"}})
    kinds = [e["__typename"] for e in events]
    assert kinds[0] == "ChatStarted"
    assert kinds[-1] == "ChatCompleted"
    assert set(kinds[1:-1]) == {"ChatDelta"}
    assert len(kinds) > 10
    deltas = [e for e in events if e["__typename"] == "ChatDelta"]
    # Deltas that pile up behind a busy client are merged, never dropped or reordered:
    # each delta's index is the position of its first token.
    assert "".join(d["text"] for d in deltas) == "".join(tokens)
    position = 0
    for delta in deltas:
        assert delta["index"] == position
        assert delta["text"].startswith(tokens[position])
        position += delta["text"].count(" ")
    done = events[-1]
    assert done["message"]["content"] == "".join(tokens)
    assert done["message"]["id"] == events[0]["messageId"]
    assert done["message"]["incomplete"] is False
    assert done["finishReason"] == "stop"
    assert done["usage"]["completionTokens"] == 40


async def test_legacy_graphql_ws_and_sse_stream_a_turn(
    chat_server: RunningServer, client: GraphQLClient
) -> None:
    carol = await client.register("carol")
    # No provider configured: the built-in extractive model answers.
    async with connect(ws_url(chat_server), subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authToken": carol.token}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        start = {"query": CHAT, "variables": {"i": {"message": "hello"}}}
        await ws.send(json.dumps({"id": "9", "type": "start", "payload": start}))
        events = []
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "ka":
                continue
            if message["type"] == "complete":
                break
            assert message["type"] == "data", message
            events.append(message["payload"]["data"]["chat"])
    assert events[0]["__typename"] == "ChatStarted"
    assert events[0]["model"] == EXTRACTIVE_MODEL
    assert events[-1]["__typename"] == "ChatCompleted"
    text = "".join(e["text"] for e in events if e["__typename"] == "ChatDelta")
    assert text == events[-1]["message"]["content"]
    assert "no language model" in text

    headers = {"Authorization": f"Bearer {carol.token}", "Accept": "text/event-stream"}
    body = {"query": CHAT, "variables": {"i": {"message": "hello again"}}}
    sse_events = []
    async with (
        httpx.AsyncClient(base_url=chat_server.url, timeout=10) as http,
        http.stream("POST", "/graphql", json=body, headers=headers) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line[6:].strip():
                sse_events.append(json.loads(line[6:])["data"]["chat"])
    assert sse_events[0]["__typename"] == "ChatStarted"
    assert sse_events[-1]["__typename"] == "ChatCompleted"


async def test_websocket_auth_bad_token_closes_4403_and_no_token_is_unauthenticated(
    chat_server: RunningServer,
) -> None:
    async with connect(ws_url(chat_server), subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        payload = {"Authorization": "Bearer not-a-real-token"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
    ws2 = await TransportWs.open(chat_server, {})
    try:
        await ws2.subscribe(CHAT, {"i": {"message": "hi"}})
        payload2 = await ws2.next()
        assert payload2["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await ws2.close()


async def test_client_disconnect_cancels_upstream_and_stores_partial_reply(
    chat_server: RunningServer, client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    llm.script(Reply(tokens=[f"t{i} " for i in range(200)], delay=0.02, report_usage=False))
    await add_provider(client, url)
    dave = await client.register("dave")
    ws = await TransportWs.open(chat_server, {"Authorization": f"Bearer {dave.token}"})
    await ws.subscribe(CHAT, {"i": {"message": "talk for a long time"}})
    started = (await ws.next())["data"]["chat"]
    for _ in range(5):
        assert (await ws.next())["data"]["chat"]["__typename"] == "ChatDelta"
    closed_at = time.monotonic()
    await ws.close()
    await asyncio.wait_for(llm.disconnected.wait(), 1.0)
    assert llm.disconnected_at is not None
    assert llm.disconnected_at - closed_at < 1.0
    assert len(llm.sent_at) < 100  # the stream stopped, it did not run to the end
    stored: list[dict[str, object]] = []
    for _ in range(50):  # the partial reply is stored just after the cancellation
        stored = await messages_of(dave, started["conversationId"])
        if len(stored) == 2:
            break
        await asyncio.sleep(0.05)
    partial = stored[1]
    assert partial["id"] == started["messageId"]
    assert partial["incomplete"] is True
    assert str(partial["content"]).startswith("t0 t1 t2 t3 t4 ")
    async with chat_server.runtime.db.unit_of_work() as uow:
        user_id = (await uow.users.by_login("dave")).id
        usage = await uow.spend.usage(user_id=user_id)
    assert len(usage) == 1
    assert usage[0].incomplete
    assert usage[0].completion_tokens >= 5


async def test_upstream_failures_become_chat_failed_events(
    chat_server: RunningServer, client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    await add_provider(client, url)
    erin = await client.register("erin")
    llm.script(Reply(tokens=["half ", "a ", "reply"], fail_after=2))
    events = await chat_over_ws(chat_server, str(erin.token), {"i": {"message": "go"}})
    failed = events[-1]
    assert failed["__typename"] == "ChatFailed"
    assert failed["code"] == "PROVIDER_UNAVAILABLE"
    assert failed["partial"]["content"] == "half a "
    assert failed["partial"]["incomplete"] is True
    llm.script(Reply(status=500))
    events = await chat_over_ws(chat_server, str(erin.token), {"i": {"message": "again"}})
    assert [e["__typename"] for e in events] == ["ChatStarted", "ChatFailed"]
    assert events[-1]["partial"] is None
    assert len(llm.requests) == 2
    llm.script(Reply(status=429, headers={"Retry-After": "0"}), Reply(tokens=["fine"]))
    events = await chat_over_ws(chat_server, str(erin.token), {"i": {"message": "retry"}})
    assert events[-1]["__typename"] == "ChatCompleted"
    assert events[-1]["message"]["content"] == "fine"
    error = await erin.error(SEND, {"i": {"message": "x", "model": "no-such-model"}})
    assert error.code == "NOT_FOUND"


async def test_anthropic_provider_answers_a_turn(
    client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    llm.script(Reply(tokens=["Claude ", "says ", "hi"], prompt_tokens=21))
    await add_provider(client, url, name="anthropic", kind="anthropic", model="claude-fake")
    frank = await client.register("frank")
    result = (await frank.data(SEND, {"i": {"message": "hi", "model": "claude-fake"}}))[
        "sendMessage"
    ]
    assert result["message"]["content"] == "Claude says hi"
    assert result["usage"]["promptTokens"] == 21
    assert result["usage"]["completionTokens"] == 3
    assert llm.requests[0]["system"].startswith("You are a helpful assistant")


@pytest.mark.parametrize(
    ("query", "variables", "fast"),
    [
        (
            'subscription { chat(input: {message: "x"}) { __typename ... on ChatDelta { text } } }',
            {},
            True,
        ),
        (
            "subscription($i: ChatInput!, $no: Boolean!) { c: chat(input: $i) { kind: __typename"
            " ... on ChatDelta { t: text text index @skip(if: $no) } ...F } }"
            " fragment F on ChatFailed { code }",
            {"i": {"message": "x"}, "no": True},
            True,
        ),
        (
            'subscription { chat(input: {message: "x"}) { ... on ChatDelta { index } } }',
            {},
            True,
        ),
        # Not a plain leaf selection for ChatDelta: executed as usual, same result.
        (
            'subscription { chat(input: {message: "x"}) { ... on ChatDelta { text @deprecated }'
            " } }",
            {},
            False,
        ),
    ],
)
def test_delta_frames_rendered_without_execution_match_execution(
    query: str, variables: dict[str, object], fast: bool
) -> None:
    """graph/executor.py renders ChatDelta events from a plan of the selection; the result
    must be exactly what graphql-core's execution gives (aliases, __typename, fragments,
    @skip/@include, key order), and anything unusual must fall back to execution."""
    from graphql import parse
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from graph.executor import EventStableExecutor
    from graph.schema import build_schema
    from graph.types.chat import ChatDelta, ChatStarted

    schema = build_schema()._schema
    document = parse(query)
    results = []
    for cls in (StrawberryGraphQLCoreExecutionContext, EventStableExecutor):
        executor = cls.build(schema, document, raw_variable_values=variables)
        assert not isinstance(executor, list), executor
        events = [ChatDelta(text="h\u00e9", index=0), ChatDelta(text="llo", index=1)]
        events.append(
            ChatStarted(conversation_id="c", user_message_id="u", message_id="m", model="x")
        )
        results.append(
            [executor.build_per_event_executor(e).execute_operation(False) for e in events]
        )
        if cls is EventStableExecutor:
            assert (executor._delta_plan[0] is not None) is fast
    reference, rendered = results
    assert [(r.data, r.errors) for r in rendered] == [(r.data, r.errors) for r in reference]
    assert [list(r.data or {}) for r in rendered] == [list(r.data or {}) for r in reference]
    for got, want in zip(rendered, reference, strict=True):
        assert [list(v) for v in (got.data or {}).values()] == [
            list(v) for v in (want.data or {}).values()
        ]
