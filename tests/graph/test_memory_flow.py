"""The core GraphQL flow on both storage backends: fields, memories, history, search."""

from __future__ import annotations

from conftest import GraphQLClient

CREATE_FIELD = (
    "mutation($n: String!) { createMemoryField(name: $n) { id name dimension embedder } }"
)
ADD_MANY = """mutation($f: ID!, $i: [MemoryInput!]!) {
  addMemories(fieldId: $f, inputs: $i) { id content source tags metadata layer kind }
}"""
SEARCH = """query($f: ID, $ns: String, $q: String!, $k: Int, $flt: MemoryFilter) {
  searchMemories(fieldId: $f, namespace: $ns, query: $q, topK: $k, filter: $flt) {
    score memory { id content source tags }
  }
}"""

FACTS = [
    "My sister Anna lives in Lisbon and works as an architect",
    "I am allergic to peanuts and shellfish",
    "The quarterly report is due on the last Friday of March",
    "Our dog Biscuit loves chasing tennis balls in the park",
]


async def _field(client: GraphQLClient, name: str = "personal") -> str:
    data = await client.data(CREATE_FIELD, {"n": name})
    return str(data["createMemoryField"]["id"])


async def test_add_and_search_returns_the_right_memory_first(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    added = await alice.data(ADD_MANY, {"f": field, "i": [{"content": c} for c in FACTS]})
    assert [m["content"] for m in added["addMemories"]] == FACTS

    hits = (await alice.data(SEARCH, {"f": field, "q": "what is Biscuit the dog chasing?"}))[
        "searchMemories"
    ]
    assert hits[0]["memory"]["content"] == FACTS[3]
    # Only memories with evidence come back, best first: nothing pads the list to top-k.
    assert all(0 < h["score"] < hits[0]["score"] for h in hits[1:])
    assert len(hits) < len(FACTS)

    by_namespace = await alice.data(SEARCH, {"ns": "personal", "q": "peanuts allergy", "k": 1})
    assert [h["memory"]["content"] for h in by_namespace["searchMemories"]] == [FACTS[1]]


async def test_filters_apply_inside_the_search(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    inputs = [
        {
            "content": f"note number {i} about the garden",
            "source": "email" if i % 5 else "slack",
            "tags": ["garden"] if i == 10 else [],
            "metadata": {"n": i},
            "occurredAt": f"2024-01-{i + 1:02d}T10:00:00Z",
        }
        for i in range(20)
    ]
    await alice.data(ADD_MANY, {"f": field, "i": inputs})
    only_slack = (
        await alice.data(SEARCH, {"f": field, "q": "garden", "k": 3, "flt": {"sources": ["slack"]}})
    )["searchMemories"]
    # Four slack notes exist; a post-filter over a top-3 would usually find fewer.
    assert len(only_slack) == 3
    assert all(h["memory"]["source"] == "slack" for h in only_slack)

    tagged = await alice.data(SEARCH, {"f": field, "q": "garden", "flt": {"tags": ["garden"]}})
    assert [h["memory"]["tags"] for h in tagged["searchMemories"]] == [["garden"]]

    dated = await alice.data(
        SEARCH,
        {
            "f": field,
            "q": "garden",
            "k": 20,
            "flt": {"occurredFrom": "2024-01-03T00:00:00Z", "occurredTo": "2024-01-05T23:00:00Z"},
        },
    )
    assert len(dated["searchMemories"]) == 3

    by_meta = await alice.data(SEARCH, {"f": field, "q": "garden", "flt": {"metadata": {"n": 7}}})
    assert [h["memory"]["content"] for h in by_meta["searchMemories"]] == [
        "note number 7 about the garden"
    ]


async def test_update_keeps_history_and_reindexes(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    memory = (await alice.data(ADD_MANY, {"f": field, "i": [{"content": "I live in Porto"}]}))[
        "addMemories"
    ][0]
    updated = await alice.data(
        """mutation($id: ID!) { updateMemory(id: $id, input: {content: "I moved to Berlin in May",
             tags: ["home"]}) { id content tags } }""",
        {"id": memory["id"]},
    )
    assert updated["updateMemory"]["content"] == "I moved to Berlin in May"
    history = await alice.data(
        "query($id: ID!) { memoryHistory(id: $id) { change oldContent newContent } }",
        {"id": memory["id"]},
    )
    assert history["memoryHistory"] == [
        {"change": "ADD", "oldContent": None, "newContent": "I live in Porto"},
        {
            "change": "UPDATE",
            "oldContent": "I live in Porto",
            "newContent": "I moved to Berlin in May",
        },
    ]
    hits = await alice.data(SEARCH, {"f": field, "q": "Berlin"})
    assert hits["searchMemories"][0]["memory"]["content"] == "I moved to Berlin in May"


async def test_delete_removes_from_search_and_records_history(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    added = (await alice.data(ADD_MANY, {"f": field, "i": [{"content": c} for c in FACTS]}))[
        "addMemories"
    ]
    await alice.data(SEARCH, {"f": field, "q": "peanuts"})  # loads the index before the delete
    target = added[1]["id"]
    assert (await alice.data("mutation($id: ID!) { deleteMemory(id: $id) }", {"id": target})) == {
        "deleteMemory": True
    }
    hits = (await alice.data(SEARCH, {"f": field, "q": "peanuts shellfish", "k": 10}))[
        "searchMemories"
    ]
    assert target not in [h["memory"]["id"] for h in hits]
    gone = await alice.error("query($id: ID!) { memory(id: $id) { id } }", {"id": target})
    assert (gone.code, gone.errors[0]["message"]) == ("NOT_FOUND", "Memory not found")
    history = await alice.data(
        "query($id: ID!) { memoryHistory(id: $id) { change } }", {"id": target}
    )
    assert [h["change"] for h in history["memoryHistory"]] == ["ADD", "DELETE"]
    missing = await alice.error("mutation($id: ID!) { deleteMemory(id: $id) }", {"id": target})
    assert missing.code == "NOT_FOUND"


async def test_fields_list_and_lookup(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    work = await _field(alice, "work")
    await _field(alice, "home")
    fields = await alice.data("{ memoryFields { name memoryCount } }")
    assert fields["memoryFields"] == [
        {"name": "work", "memoryCount": 0},
        {"name": "home", "memoryCount": 0},
    ]
    one = await alice.data("query($id: ID!) { memoryField(id: $id) { name } }", {"id": work})
    assert one == {"memoryField": {"name": "work"}}
    dup = await alice.error(CREATE_FIELD, {"n": "work"})
    assert dup.code == "BAD_USER_INPUT"


async def test_search_without_a_field_covers_all_of_the_callers_fields(
    gql: GraphQLClient,
) -> None:
    alice = await gql.register("alice")
    assert (await alice.data(SEARCH, {"q": "anything"}))["searchMemories"] == []  # no field yet
    home, work = await _field(alice, "home"), await _field(alice, "work")
    await alice.data(ADD_MANY, {"f": home, "i": [{"content": FACTS[3]}]})
    await alice.data(ADD_MANY, {"f": work, "i": [{"content": FACTS[2]}]})
    bob = await gql.register("bob")
    await bob.data(ADD_MANY, {"f": await _field(bob, "home"), "i": [{"content": FACTS[0]}]})

    everywhere = (await alice.data(SEARCH, {"q": "Biscuit report Anna"}))["searchMemories"]
    assert {h["memory"]["content"] for h in everywhere} == {FACTS[3], FACTS[2]}  # not bob's
    # A namespace is only looked up: an unknown one is NOT_FOUND and creates no field.
    missing = await alice.error(SEARCH, {"ns": "nowhere", "q": "x"})
    assert missing.code == "NOT_FOUND"
    names = await alice.data("{ memoryFields { name } }")
    assert sorted(f["name"] for f in names["memoryFields"]) == ["home", "work"]


async def test_a_memory_sent_without_kind_is_a_turn_when_it_names_its_speaker(
    gql: GraphQLClient,
) -> None:
    alice = await gql.register("alice")
    field = await _field(alice)
    inputs = [
        {"content": "Caroline: I went to the support group yesterday."},
        {"content": "Melanie: That sounds powerful, how was it?"},
        {"content": "It went well", "speaker": "Caroline"},
        {"content": "I am allergic to peanuts and shellfish"},
        {"content": "Caroline: an explicit kind is kept", "kind": "FACT"},
        {"content": "plan: lower-case words are no speaker label"},
        {"content": "Reminder: a note's heading is no speaker either"},
        {"content": "Birthday: March 3, nor is a record's field name"},
    ]
    added = (await alice.data(ADD_MANY, {"f": field, "i": inputs}))["addMemories"]
    assert [m["kind"] for m in added] == [
        *("EPISODE", "EPISODE", "EPISODE"),
        *("FACT", "FACT", "FACT", "FACT", "FACT"),
    ]
    # Turns are conversation events: short-term until promoted, as EPISODE sent as such.
    assert added[0]["layer"] == "SHORT_TERM"
    assert added[3]["layer"] == "LONG_TERM"
