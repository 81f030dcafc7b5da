"""Procedural memory end to end: patterns learnt from messages as they arrive, reinforced,
updated by a contradiction and retired by a withdrawal (with history), repeated requests,
the ProceduralMemory context layer counting use, deletion, paging and tenancy."""

from __future__ import annotations

import json
from typing import Any

from conftest import GraphQLClient
from worker_support import Receiver, eventually

CONV = 'mutation { createConversation(input: {title: "t"}) { id } }'
SAY = """mutation($c: ID!, $t: String!, $r: String!) {
  addMessage(conversationId: $c, input: {role: $r, content: $t}) { id } }"""
PATTERNS = """query($first: Int, $after: String) { patterns(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id name description kind triggers { type pattern } evidenceMessageIds
    confidence usageCount lastUsed status } } } }"""
HISTORY = """query($id: ID!) { patternHistory(id: $id) { change oldDescription newDescription
  messageId } }"""


async def _say(client: GraphQLClient, conv: str, text: str, role: str = "user") -> str:
    return str((await client.data(SAY, {"c": conv, "t": text, "r": role}))["addMessage"]["id"])


async def _patterns(client: GraphQLClient) -> list[dict[str, Any]]:
    page = (await client.data(PATTERNS, {"first": 50}))["patterns"]
    return [e["node"] for e in page["edges"]]


async def test_learn_reinforce_update_and_retire(worker_server: Any) -> None:
    alice = await GraphQLClient(worker_server.url).register("alice")
    conv = (await alice.data(CONV))["createConversation"]["id"]
    await _say(alice, conv, "I prefer Python with type hints.", role="assistant")  # not hers
    first = await _say(alice, conv, "Hi! I prefer Python with type hints.")
    (pattern,) = await eventually(lambda: _patterns(alice))
    assert pattern["kind"] == "preference"
    assert pattern["description"] == "User prefers python with type hints"
    assert pattern["evidenceMessageIds"] == [first]
    assert {"type": "keyword", "pattern": "python"} in pattern["triggers"]
    assert any(t["type"] == "semantic" for t in pattern["triggers"])
    assert pattern["usageCount"] == 0
    assert pattern["lastUsed"] is None

    again = await _say(alice, conv, "Like I said, I prefer Python with type hints")
    reinforced = await eventually(
        lambda: _patterns(alice), accept=lambda ps: len(ps[0]["evidenceMessageIds"]) == 2
    )
    assert reinforced[0]["confidence"] > pattern["confidence"]
    assert reinforced[0]["evidenceMessageIds"] == [first, again]

    switch = await _say(alice, conv, "Actually I prefer Go now.")
    updated = await eventually(
        lambda: _patterns(alice), accept=lambda ps: "go" in ps[0]["description"].lower()
    )
    assert len(updated) == 1
    assert updated[0]["id"] == pattern["id"]
    assert updated[0]["description"] == "User prefers go"

    await _say(alice, conv, "I no longer prefer Go.")
    await eventually(lambda: _patterns(alice), accept=lambda ps: ps == [])
    history = (await alice.data(HISTORY, {"id": pattern["id"]}))["patternHistory"]
    assert [h["change"] for h in history] == ["DETECTED", "REINFORCED", "UPDATED", "RETIRED"]
    assert history[2]["oldDescription"] == "User prefers python with type hints"
    assert history[2]["newDescription"] == "User prefers go"
    assert history[2]["messageId"] == switch
    retired = await alice.data(
        "query($id: ID!) { pattern(id: $id) { status } }", {"id": pattern["id"]}
    )
    assert retired["pattern"]["status"] == "retired"


async def test_context_layer_counts_usage(worker_server: Any) -> None:
    alice = await GraphQLClient(worker_server.url).register("alice")
    conv = (await alice.data(CONV))["createConversation"]["id"]
    await _say(
        alice, conv, "From now on, always answer in Portuguese. I prefer Rust for systems work."
    )
    found = await eventually(lambda: _patterns(alice), accept=lambda ps: len(ps) == 2)
    by_name = {p["name"]: p for p in found}
    assert set(by_name) == {"Reply Language", "Programming Language Preference"}

    context = await alice.data(
        """query($c: ID!) { context(conversationId: $c, query: "how do I sort a list in rust?") {
             items { layer text refId } layers { layer count } } }""",
        {"c": conv},
    )
    procedural = [i for i in context["context"]["items"] if i["layer"] == "procedural"]
    assert {i["text"] for i in procedural} == {
        "User wants replies in Portuguese",
        "User prefers rust for systems work",
    }
    after = {p["name"]: p for p in await _patterns(alice)}
    assert after["Reply Language"]["usageCount"] == 1
    assert after["Reply Language"]["lastUsed"] is not None

    # A query that fires only the every-turn rule leaves the Rust preference unused.
    await alice.data(
        """query($c: ID!) { context(conversationId: $c, query: "what's for dinner") { tokens } }""",
        {"c": conv},
    )
    final = {p["name"]: p["usageCount"] for p in await _patterns(alice)}
    assert final == {"Reply Language": 2, "Programming Language Preference": 1}


async def test_repeated_requests_become_a_pattern(worker_server: Any) -> None:
    alice = await GraphQLClient(worker_server.url).register("alice")
    conv = (await alice.data(CONV))["createConversation"]["id"]
    ids = [
        await _say(alice, conv, "Summarize the weekly sales report for the team"),
        await _say(alice, conv, "What's the weather like?"),
        await _say(alice, conv, "Summarize the weekly sales report for the team please"),
    ]
    assert await _patterns(alice) == []
    ids.append(await _say(alice, conv, "Please summarize the weekly sales report for the team"))
    (pattern,) = await eventually(lambda: _patterns(alice))
    assert pattern["kind"] == "repeated_request"
    assert pattern["evidenceMessageIds"] == [ids[0], ids[2], ids[3]]
    assert pattern["description"].startswith("User repeatedly asks: ")


async def test_delete_page_tenancy_and_event(
    worker_server: Any, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    alice = await GraphQLClient(worker_server.url).register("alice")
    await alice.data(
        'mutation($u: String!) { createWebhook(url: $u, events: ["pattern.detected"]) { secret } }',
        {"u": url},
    )
    conv = (await alice.data(CONV))["createConversation"]["id"]
    await _say(alice, conv, "Keep your replies short. Never use emojis. Call me Sam.")
    await eventually(lambda: _patterns(alice), accept=lambda ps: len(ps) == 3)
    first = (await alice.data(PATTERNS, {"first": 2}))["patterns"]
    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await alice.data(PATTERNS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "patterns"
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    ids = [e["node"]["id"] for e in first["edges"] + rest["edges"]]
    assert len(set(ids)) == 3

    bob = await GraphQLClient(worker_server.url).register("bob")
    assert (await bob.data(PATTERNS, {"first": 5}))["patterns"]["totalCount"] == 0
    denied = await bob.error("mutation($id: ID!) { deletePattern(id: $id) }", {"id": ids[0]})
    assert denied.code == "NOT_FOUND"
    assert (await alice.data("mutation($id: ID!) { deletePattern(id: $id) }", {"id": ids[0]}))[
        "deletePattern"
    ]
    assert len(await _patterns(alice)) == 2

    received = await eventually(lambda: _received(target), accept=lambda n: len(n) == 3)
    names = sorted(json.loads(r)["data"]["name"] for r in received)
    assert names == ["Form of Address", "Instruction: Use emojis", "Reply Length"]


async def _received(target: Receiver) -> list[bytes]:
    return [r.body for r in target.ok()]
