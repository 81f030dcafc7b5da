"""The delta lane writes ChatDelta frames itself (graph/delta_lane.py): they must be exactly
the frames Strawberry would send, and a stream must read the same over the lane
(graphql-transport-ws) as over the normal path (legacy graphql-ws)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chat_helpers import (  # noqa: F401  # fixtures are used by name
    TransportWs,
    add_provider,
    chat_server_fixture,
    client_fixture,
    fake_llm_fixture,
    ws_url,
)
from conftest import GraphQLClient, RunningServer
from fake_llm import FakeLLM, Reply
from graphql import parse
from strawberry.http.base import BaseView
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from websockets.asyncio.client import connect

from graph.delta_lane import DeltaLane
from graph.executor import EventStableExecutor
from graph.schema import build_schema
from graph.types.chat import ChatDelta

# Quotes, backslashes, control characters, non-ASCII and astral-plane text: JSON escaping
# is where a hand-built frame could differ.
TOKENS = ['He said "hi"', "\\path\\", "tab\there\n", "h\u00e9", "\U0001f600 ", "</script>"]

SELECTIONS = [
    "subscription($i: ChatInput!) { chat(input: $i) { __typename ... on ChatDelta { text } } }",
    "subscription($i: ChatInput!, $no: Boolean!) { c: chat(input: $i) { kind: __typename"
    " ... on ChatDelta { t: text text index @skip(if: $no) at: index } ...F } }"
    " fragment F on ChatFailed { code }",
    "subscription($i: ChatInput!) { chat(input: $i) { ... on ChatDelta { index } } }",
]


@pytest.mark.parametrize("query", SELECTIONS)
def test_lane_frames_are_the_frames_strawberry_sends(query: str) -> None:
    schema = build_schema()._schema
    executor = EventStableExecutor.build(
        schema, parse(query), raw_variable_values={"i": {"message": "x"}, "no": False}
    )
    assert isinstance(executor, EventStableExecutor)
    plan = executor.delta_plan()
    assert plan is not None
    operation: Operation[Any, Any] = Operation(None, 'op-"7"', query, None, None)  # type: ignore[arg-type]
    lane = DeltaLane(None, operation, executor, *plan)  # type: ignore[arg-type]
    for index, text in enumerate(TOKENS):
        delta = ChatDelta(text=text, index=index)
        executed = executor.build_per_event_executor(delta).execute_operation(False)
        message = {"id": operation.id, "type": "next", "payload": {"data": executed.data}}
        assert lane.frame(delta) == BaseView.encode_json(None, message)  # type: ignore[arg-type]


async def _frames_transport_ws(server: RunningServer, token: str, query: str) -> list[str]:
    ws = await TransportWs.open(server, {"Authorization": f"Bearer {token}"})
    try:
        await ws.subscribe(query, {"i": {"message": "tell me", "includeMemory": False}})
        frames = []
        while True:
            raw = await ws.socket.recv()
            assert isinstance(raw, str)
            if json.loads(raw)["type"] == "complete":
                return frames
            frames.append(raw)
    finally:
        await ws.close()


async def _payloads_legacy_ws(server: RunningServer, token: str, query: str) -> list[Any]:
    async with connect(ws_url(server), subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        variables = {"i": {"message": "tell me", "includeMemory": False}}
        start = {"id": "1", "type": "start", "payload": {"query": query, "variables": variables}}
        await ws.send(json.dumps(start))
        payloads = []
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "complete":
                return payloads
            if message["type"] == "ka":
                continue
            assert message["type"] == "data", message
            payloads.append(message["payload"])


async def test_stream_reads_the_same_over_the_lane_and_the_normal_path(
    chat_server: RunningServer, client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    await add_provider(client, url)
    dora = await client.register("dora")
    query = (
        "subscription($i: ChatInput!) { chat(input: $i) { __typename"
        " ... on ChatDelta { text index } ... on ChatCompleted { message { content } } } }"
    )
    # Spaced out, so nothing is merged and both runs see one delta per token.
    llm.script(Reply(tokens=TOKENS, delay=0.02))
    frames = await _frames_transport_ws(chat_server, str(dora.token), query)
    llm.script(Reply(tokens=TOKENS, delay=0.02))
    legacy = await _payloads_legacy_ws(chat_server, str(dora.token), query)

    messages = [json.loads(f) for f in frames]
    # Every frame, the lane's included, is compact JSON as Strawberry encodes it.
    assert frames == [BaseView.encode_json(None, m) for m in messages]  # type: ignore[arg-type]
    assert {m["id"] for m in messages} == {"1"}
    assert [m["payload"] for m in messages] == legacy
    events = [m["payload"]["data"]["chat"] for m in messages]
    assert [e["__typename"] for e in events] == ["ChatStarted"] + ["ChatDelta"] * len(TOKENS) + [
        "ChatCompleted"
    ]
    assert [e["text"] for e in events[1:-1]] == TOKENS
    assert [e["index"] for e in events[1:-1]] == list(range(len(TOKENS)))
    assert events[-1]["message"]["content"] == "".join(TOKENS)
