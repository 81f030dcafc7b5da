"""``stats`` is counted from the store: by layer, source and kind, and right after deletes."""

from __future__ import annotations

from conftest import GraphQLClient, RunningServer

STATS = """{ stats { totalMemories shortTerm longTerm bySource { key count } byKind { key count }
  conversationCount messageCount factCount patternCount sourceCount lastSync } }"""
ADD = """mutation($f: ID!, $c: String!, $s: String!) {
  addMemory(fieldId: $f, input: {content: $c, source: $s}) { id } }"""


async def test_stats_follow_adds_and_deletes(gql: GraphQLClient, server: RunningServer) -> None:
    alice = await gql.register("alice")
    empty = (await alice.data(STATS))["stats"]
    assert empty["totalMemories"] == 0
    assert empty["bySource"] == []
    assert empty["lastSync"] is None
    field = (await alice.data('mutation { createMemoryField(name: "n") { id } }'))[
        "createMemoryField"
    ]["id"]
    ids = [
        (await alice.data(ADD, {"f": field, "c": f"fact number {i}", "s": src}))["addMemory"]["id"]
        for i, src in enumerate(["email", "email", "github", "api"])
    ]
    conv = (await alice.data('mutation { createConversation(input: {title: "c"}) { id } }'))[
        "createConversation"
    ]["id"]
    for text in ("hello", "world"):
        await alice.data(
            'mutation($c: ID!, $t: String!) { addMessage(conversationId: $c, input: {role: "user", content: $t}) { id } }',
            {"c": conv, "t": text},
        )
    # The two messages are kept as short-term memories of kind MESSAGE, in the background.
    await server.runtime.chat.recall.drain()
    stats = (await alice.data(STATS))["stats"]
    assert stats["totalMemories"] == 6
    assert stats["longTerm"] == 4
    assert stats["shortTerm"] == 2
    assert {e["key"]: e["count"] for e in stats["bySource"]} == {
        "api": 1,
        "chat": 2,
        "email": 2,
        "github": 1,
    }
    assert {e["key"]: e["count"] for e in stats["byKind"]} == {"fact": 4, "message": 2}
    assert stats["factCount"] == 4
    assert (stats["conversationCount"], stats["messageCount"]) == (1, 2)

    await alice.data("mutation($id: ID!) { deleteMemory(id: $id) }", {"id": ids[0]})
    after = (await alice.data(STATS))["stats"]
    assert after["totalMemories"] == 5
    assert {e["key"]: e["count"] for e in after["bySource"]} == {
        "api": 1,
        "chat": 2,
        "email": 1,
        "github": 1,
    }

    bob = await gql.register("bob")
    assert (await bob.data(STATS))["stats"]["totalMemories"] == 0
