"""Conversation messages kept as searchable memories (domain/services/message_recall.py):
what was said long before the working window is found again, by search and by chat
context; it stays the user's own; ``MEMORIA_REMEMBER_MESSAGES=off`` keeps nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import GraphQLClient, RunningServer
from worker_support import eventually, fast_settings, start_app

from memoria.settings import Settings

CREATE = """mutation($i: ConversationInput!) { createConversation(input: $i) { id } }"""
ADD = """mutation($c: ID!, $r: String!, $t: String!) {
  addMessage(conversationId: $c, input: {role: $r, content: $t}) { id }
}"""
SEARCH = """query($q: String!) {
  searchMemories(namespace: "conversations", query: $q, topK: 3) {
    memory { content kind source speaker metadata layer }
  }
}"""
KEY = "The spare key is under the blue flowerpot by the back door."
CHATTER = [
    "Did you see the match last night?",
    "Yes, what a finish in extra time.",
    "I still need to buy a new kettle.",
    "The old one started leaking again?",
    "It did, all over the counter.",
]


@pytest.fixture
async def recalling(settings: Settings) -> AsyncIterator[RunningServer]:
    running = await start_app(fast_settings(settings))
    try:
        yield running
    finally:
        await running.stop()


async def _converse(client: GraphQLClient) -> str:
    """A conversation whose key fact was said 21 messages before its end: far outside the
    12 recent turns chat context carries as working memory."""
    conversation = (await client.data(CREATE, {"i": {"title": "House"}}))["createConversation"]
    await client.data(ADD, {"c": conversation["id"], "r": "user", "t": KEY})
    for i in range(20):
        role = "assistant" if i % 2 == 0 else "user"
        await client.data(ADD, {"c": conversation["id"], "r": role, "t": CHATTER[i % 5]})
    return str(conversation["id"])


async def _search(client: GraphQLClient, query: str) -> list[dict[str, Any]]:
    body = await client.post(SEARCH, {"q": query})
    if body.get("errors"):  # the field appears with the first message kept
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
        return []
    return list(body["data"]["searchMemories"])


async def test_an_old_message_is_found_by_search_and_by_chat_context(
    recalling: RunningServer,
) -> None:
    client = GraphQLClient(recalling.url)
    alice = await client.register("alice")
    conversation_id = await _converse(alice)
    hits = await eventually(
        lambda: _search(alice, "where is the spare key?"),
        accept=lambda found: bool(found) and found[0]["memory"]["content"] == KEY,
    )
    memory = hits[0]["memory"]
    assert (memory["kind"], memory["source"], memory["speaker"]) == ("MESSAGE", "chat", "user")
    assert memory["metadata"]["conversation_id"] == conversation_id
    assert memory["metadata"]["role"] == "user"
    assert memory["layer"] == "SHORT_TERM"
    # Every message is kept once (repeated words are separate messages): 21 memories.
    counted = await eventually(
        lambda: alice.data("{ memoryFields { name memoryCount } }"),
        accept=lambda d: {"name": "conversations", "memoryCount": 21} in d["memoryFields"],
    )
    assert len(counted["memoryFields"]) == 1  # nothing went to the facts' default field
    # Chat context on that conversation (MemoryKit's route, the same token) reaches it as
    # episodic memory, while its recent turns carry only the chatter.
    async with httpx.AsyncClient(base_url=recalling.url, timeout=30) as http:
        response = await http.get(
            f"/v1/conversations/{conversation_id}/context",
            params={"query": "Where did I say the spare key is?"},
            headers={"Authorization": f"Bearer {alice.token}"},
        )
    assert response.status_code == 200, response.text
    context = response.json()["context"]
    episodic, _, recent = context.partition("=== Recent Conversation ===")
    assert "=== Episodic Memory ===" in episodic
    assert f"- {KEY}" in episodic
    assert KEY not in recent


async def test_another_user_never_sees_the_messages(recalling: RunningServer) -> None:
    client = GraphQLClient(recalling.url)
    alice = await client.register("alice")
    bob = await client.register("bob")
    await _converse(alice)
    bobs = await _converse(bob)
    await eventually(lambda: _search(alice, "spare key flowerpot"), accept=bool)
    await recalling.runtime.chat.recall.drain()
    hits = await _search(bob, "spare key flowerpot")
    assert hits  # bob said the same words, in his own conversation
    assert {h["memory"]["metadata"]["conversation_id"] for h in hits} == {bobs}


async def test_switched_off_nothing_is_kept(settings: Settings) -> None:
    running = await start_app(fast_settings(settings).with_(remember_messages=False))
    try:
        client = GraphQLClient(running.url)
        alice = await client.register("alice")
        await _converse(alice)
        await running.runtime.chat.recall.drain()
        assert await _search(alice, "where is the spare key?") == []
    finally:
        await running.stop()
