"""One scenario, three transports: GraphQL over HTTP, GraphQL over WebSocket
(graphql-transport-ws, queries and mutations sent as ``subscribe`` messages) and the REST
compatibility routes. Each runs for a fresh user on the same data; the results must agree,
since every surface calls the same domain services."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx
from conftest import RunningServer
from rest_helpers import Rest, new_account
from websockets.asyncio.client import connect

FIELD = "mutation($n: String!) { createMemoryField(name: $n) { id name } }"
ADD = """mutation($f: ID!, $c: String!, $s: String) {
  addMemory(fieldId: $f, input: {content: $c, source: $s}) { id content source }
}"""
SEARCH = """query($f: ID!, $q: String!, $k: Int!) {
  searchMemories(fieldId: $f, query: $q, topK: $k) { score memory { id content source } }
}"""
CONVERSATION = "mutation($t: String!) { createConversation(input: {title: $t}) { id title } }"
MESSAGE = """mutation($c: ID!, $r: String!, $x: String!) {
  addMessage(conversationId: $c, input: {role: $r, content: $x}) { id role content importance }
}"""
STATS = "{ stats { totalMemories conversationCount messageCount } }"

MEMORIES = [
    ("Alice is allergic to peanuts", "api"),
    ("The quarterly report is due on Friday", "email"),
    ("Alice prefers tea over coffee", "api"),
    ("Deploy the search service with two replicas", "github"),
]


class Transport(Protocol):
    async def create_field(self, name: str) -> str: ...
    async def add_memory(self, field_id: str, content: str, source: str) -> dict[str, Any]: ...
    async def search(self, field_id: str, query: str, top_k: int) -> list[tuple[str, float]]: ...
    async def conversation(self, title: str) -> str: ...
    async def message(self, conversation_id: str, role: str, content: str) -> dict[str, Any]: ...
    async def stats(self) -> dict[str, int]: ...
    async def close(self) -> None: ...


class GraphQLTransport:
    """Subclasses say how one operation travels; results are read the same way."""

    async def run(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def create_field(self, name: str) -> str:
        return str((await self.run(FIELD, {"n": name}))["createMemoryField"]["id"])

    async def add_memory(self, field_id: str, content: str, source: str) -> dict[str, Any]:
        memory = (await self.run(ADD, {"f": field_id, "c": content, "s": source}))["addMemory"]
        return {"content": memory["content"], "source": memory["source"]}

    async def search(self, field_id: str, query: str, top_k: int) -> list[tuple[str, float]]:
        hits = (await self.run(SEARCH, {"f": field_id, "q": query, "k": top_k}))["searchMemories"]
        return [(h["memory"]["content"], round(h["score"], 5)) for h in hits]

    async def conversation(self, title: str) -> str:
        return str((await self.run(CONVERSATION, {"t": title}))["createConversation"]["id"])

    async def message(self, conversation_id: str, role: str, content: str) -> dict[str, Any]:
        m = (await self.run(MESSAGE, {"c": conversation_id, "r": role, "x": content}))["addMessage"]
        return {"role": m["role"], "content": m["content"], "importance": m["importance"]}

    async def stats(self) -> dict[str, int]:
        s = (await self.run(STATS, {}))["stats"]
        return {
            "memories": s["totalMemories"],
            "conversations": s["conversationCount"],
            "messages": s["messageCount"],
        }

    async def close(self) -> None:
        return None


class GraphQLHttp(GraphQLTransport):
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    async def run(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        body = response.json()
        assert not body.get("errors"), body
        return dict(body["data"])


class GraphQLWebSocket(GraphQLTransport):
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.replace("http://", "ws://") + "/graphql", token
        self.socket: Any = None
        self.next_id = 0

    async def open(self) -> GraphQLWebSocket:
        self.socket = await connect(self.url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await self.socket.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}
            )
        )
        assert json.loads(await self.socket.recv())["type"] == "connection_ack"
        return self

    async def run(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        op_id = str(self.next_id)
        await self.socket.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables},
                }
            )
        )
        data: dict[str, Any] | None = None
        while True:
            message = json.loads(await self.socket.recv())
            assert message.get("id") == op_id, message
            if message["type"] == "next":
                assert not message["payload"].get("errors"), message
                data = message["payload"]["data"]
            elif message["type"] == "complete":
                assert data is not None
                return data
            else:
                raise AssertionError(message)

    async def close(self) -> None:
        await self.socket.close()


class RestTransport:
    def __init__(self, url: str, token: str) -> None:
        self.api = Rest(url, token)

    async def create_field(self, name: str) -> str:
        response = await self.api.post("/fields/create-memory-field", json={"name": name})
        return str(response.json()["field_id"])

    async def add_memory(self, field_id: str, content: str, source: str) -> dict[str, Any]:
        response = await self.api.post(
            f"/fields/{field_id}/memories", json={"content": content, "source": source}
        )
        data = response.json()["data"]
        return {"content": data["content"], "source": data["source"]}

    async def search(self, field_id: str, query: str, top_k: int) -> list[tuple[str, float]]:
        response = await self.api.post(
            f"/fields/{field_id}/memories/query", json={"query": query, "top_k": top_k}
        )
        return [(r["content"], round(r["score"], 5)) for r in response.json()["results"]]

    async def conversation(self, title: str) -> str:
        return str((await self.api.post("/v1/conversations", json={"title": title})).json()["id"])

    async def message(self, conversation_id: str, role: str, content: str) -> dict[str, Any]:
        m = (
            await self.api.post(
                f"/v1/conversations/{conversation_id}/messages",
                json={"role": role, "content": content},
            )
        ).json()
        return {"role": m["role"], "content": m["content"], "importance": m["importanceScore"]}

    async def stats(self) -> dict[str, int]:
        senua = (await self.api.get("/api/memory/stats")).json()
        kit = (await self.api.get("/v1/memory/statistics")).json()
        return {
            "memories": senua["total_memories"],
            "conversations": kit["conversationCount"],
            "messages": kit["messageCount"],
        }

    async def close(self) -> None:
        return None


async def _transport(kind: str, url: str, token: str) -> Transport:
    if kind == "graphql-http":
        return GraphQLHttp(url, token)
    if kind == "graphql-ws":
        return await GraphQLWebSocket(url, token).open()
    return RestTransport(url, token)


def _ranked(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Hits in score order with ties by content: equal scores have no order of their own
    (the engine breaks them by memory id, which differs between the accounts)."""
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))


async def _scenario(client: Transport, settle: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    field_id = await client.create_field("notes")
    added = [await client.add_memory(field_id, c, s) for c, s in MEMORIES]
    conversation = await client.conversation("Planning")
    messages = [
        await client.message(conversation, "user", "Remember that I always want short answers"),
        await client.message(conversation, "assistant", "Noted."),
    ]
    await settle()  # the messages are kept as memories in the background
    return {
        "added": added,
        "search_alice": _ranked(await client.search(field_id, "what is Alice allergic to", 3)),
        "search_report": _ranked(await client.search(field_id, "report deadline", 2)),
        "messages": messages,
        "stats": await client.stats(),
    }


async def test_graphql_http_websocket_and_rest_agree(rest_server: RunningServer) -> None:
    server = rest_server  # roomy rate limits: the REST leg makes more than 10 requests
    results: dict[str, dict[str, Any]] = {}
    for index, kind in enumerate(("graphql-http", "graphql-ws", "rest")):
        account = await new_account(server.url, f"parity{index}")
        client = await _transport(kind, server.url, account.jwt)
        try:
            results[kind] = await _scenario(client, server.runtime.chat.recall.drain)
        finally:
            await client.close()
    reference = results["graphql-http"]
    assert reference["search_alice"][0][0] == "Alice is allergic to peanuts"
    # Four memories, and the two messages kept as memories too.
    assert reference["stats"] == {"memories": 6, "conversations": 1, "messages": 2}
    for kind, result in results.items():
        assert result == reference, kind
