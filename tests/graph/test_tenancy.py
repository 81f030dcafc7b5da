"""Everything an owner has is invisible to every other user."""

from __future__ import annotations

from dataclasses import dataclass

from conftest import GraphQLClient


@dataclass
class Owned:
    field: str
    memory: str
    conversation: str
    message: str
    api_key: str


async def _alice_world(alice: GraphQLClient) -> Owned:
    field = (await alice.data('mutation { createMemoryField(name: "secrets") { id } }'))[
        "createMemoryField"
    ]["id"]
    memory = (
        await alice.data(
            'mutation($f: ID!) { addMemory(fieldId: $f, input: {content: "Alice PIN is 4321"}) '
            "{ id } }",
            {"f": field},
        )
    )["addMemory"]["id"]
    conversation = (
        await alice.data('mutation { createConversation(input: {title: "diary"}) { id } }')
    )["createConversation"]["id"]
    message = (
        await alice.data(
            'mutation($c: ID!) { addMessage(conversationId: $c, input: {role: "user", '
            'content: "dear diary"}) { id } }',
            {"c": conversation},
        )
    )["addMessage"]["id"]
    api_key = (await alice.data('mutation { createApiKey(name: "a") { apiKey { id } } }'))[
        "createApiKey"
    ]["apiKey"]["id"]
    return Owned(field, memory, conversation, message, api_key)


async def test_another_users_objects_are_not_found(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    bob = await gql.register("bobby")
    owned = await _alice_world(alice)
    await bob.data('mutation { createMemoryField(name: "secrets") { id } }')

    not_found = {
        "query($id: ID!) { memoryField(id: $id) { id } }": owned.field,
        "query($id: ID!) { memory(id: $id) { id } }": owned.memory,
        "query($id: ID!) { conversation(id: $id) { id } }": owned.conversation,
        "query($id: ID!) { memoryHistory(id: $id) { id } }": owned.memory,
        'query($id: ID!) { searchMemories(fieldId: $id, query: "PIN") { score } }': owned.field,
        'mutation($id: ID!) { addMemory(fieldId: $id, input: {content: "x"}) { id } }': owned.field,
        'mutation($id: ID!) { addMemories(fieldId: $id, inputs: [{content: "x"}]) { id } }': (
            owned.field
        ),
        'mutation($id: ID!) { updateMemory(id: $id, input: {content: "pwned"}) { id } }': (
            owned.memory
        ),
        "mutation($id: ID!) { deleteMemory(id: $id) }": owned.memory,
        'mutation($id: ID!) { addMessage(conversationId: $id, input: {role: "user", '
        'content: "x"}) { id } }': owned.conversation,
        'mutation($id: ID!) { addAttachment(messageId: $id, input: {fileType: "text/plain"}) '
        "{ id } }": owned.message,
        'mutation($id: ID!) { createConversation(input: {title: "t", fieldId: $id}) { id } }': (
            owned.field
        ),
        "mutation($id: ID!) { revokeApiKey(id: $id) }": owned.api_key,
    }
    for query, object_id in not_found.items():
        error = await bob.error(query, {"id": object_id})
        assert error.code == "NOT_FOUND", query

    # Bob's own lists and searches never show Alice's things.
    assert (await bob.data("{ conversations { totalCount } }"))["conversations"]["totalCount"] == 0
    assert [f["name"] for f in (await bob.data("{ memoryFields { name } }"))["memoryFields"]] == [
        "secrets"
    ]
    assert (await bob.data('{ searchMemories(namespace: "secrets", query: "PIN") { score } }')) == {
        "searchMemories": []
    }
    assert (await bob.data("{ apiKeys { id } }")) == {"apiKeys": []}

    # And Alice's data is untouched by Bob's attempts.
    memory = await alice.data(
        "query($id: ID!) { memory(id: $id) { content } }", {"id": owned.memory}
    )
    assert memory == {"memory": {"content": "Alice PIN is 4321"}}
    history = await alice.data(
        "query($id: ID!) { memoryHistory(id: $id) { change } }", {"id": owned.memory}
    )
    assert history == {"memoryHistory": [{"change": "ADD"}]}
    keys = await alice.data("{ apiKeys { revoked } }")
    assert keys == {"apiKeys": [{"revoked": False}]}
