"""Conversations, messages (Relay pagination) and attachment metadata."""

from __future__ import annotations

from conftest import GraphQLClient

CREATE = """mutation($i: ConversationInput!) {
  createConversation(input: $i) { id title description tags messageCount }
}"""
ADD = """mutation($c: ID!, $r: String!, $t: String!) {
  addMessage(conversationId: $c, input: {role: $r, content: $t}) { id role content }
}"""
MESSAGES = """query($id: ID!, $first: Int, $after: String) {
  conversation(id: $id) {
    messageCount
    messages(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { content } }
    }
  }
}"""


async def test_messages_paginate_in_order(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    conv = (await alice.data(CREATE, {"i": {"title": "Trip", "tags": ["travel"]}}))[
        "createConversation"
    ]
    assert conv["messageCount"] == 0
    for i in range(5):
        await alice.data(
            ADD, {"c": conv["id"], "r": "user" if i % 2 == 0 else "assistant", "t": f"message {i}"}
        )
    seen: list[str] = []
    after = None
    while True:
        page = (await alice.data(MESSAGES, {"id": conv["id"], "first": 2, "after": after}))[
            "conversation"
        ]
        assert page["messageCount"] == 5
        connection = page["messages"]
        assert connection["totalCount"] == 5
        seen += [e["node"]["content"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [f"message {i}" for i in range(5)]


async def test_conversations_connection_and_attachments(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    ids = [
        (await alice.data(CREATE, {"i": {"title": f"c{i}"}}))["createConversation"]["id"]
        for i in range(3)
    ]
    listing = (
        await alice.data(
            "{ conversations(first: 2) { totalCount pageInfo { hasNextPage endCursor } "
            "edges { node { id title } } } }"
        )
    )["conversations"]
    assert listing["totalCount"] == 3
    assert listing["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in listing["edges"]] == ids[::-1][:2]

    message = (await alice.data(ADD, {"c": ids[0], "r": "user", "t": "see attached"}))["addMessage"]
    attachment = await alice.data(
        """mutation($m: ID!) { addAttachment(messageId: $m, input: {fileType: "application/pdf",
             filePath: "/srv/files/../../etc/passwd", size: 2048}) { id fileType filePath size } }""",
        {"m": message["id"]},
    )
    assert attachment["addAttachment"]["filePath"] == "/srv/files/../../etc/passwd"  # opaque
    listed = await alice.data(
        "query($id: ID!) { conversation(id: $id) { attachments { fileType size } } }",
        {"id": ids[0]},
    )
    assert listed["conversation"]["attachments"] == [{"fileType": "application/pdf", "size": 2048}]


async def test_bad_message_input(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    conv = (await alice.data(CREATE, {"i": {"title": "x"}}))["createConversation"]["id"]
    bad_role = await alice.error(ADD, {"c": conv, "r": "wizard", "t": "hi"})
    assert bad_role.code == "BAD_USER_INPUT"
    empty = await alice.error(ADD, {"c": conv, "r": "user", "t": "   "})
    assert empty.code == "BAD_USER_INPUT"
    bad_cursor = await alice.error(MESSAGES, {"id": conv, "first": 2, "after": "!!nope"})
    assert bad_cursor.code == "BAD_USER_INPUT"
    too_many = await alice.error(MESSAGES, {"id": conv, "first": 10_000})
    assert too_many.code == "BAD_USER_INPUT"
    count = await alice.data(MESSAGES, {"id": conv, "first": 5})
    assert count["conversation"]["messageCount"] == 0
