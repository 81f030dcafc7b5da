"""Background maintenance, on both storage backends: after the embedder changes, a field
keeps working lexically while it waits, then is re-embedded in the background onto the new
embedder (an OpenAI-compatible endpoint on loopback, chosen through settings); promotion
sweeps move short-term memories that stayed important to the long-term layer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from conftest import GraphQLClient, RunningServer
from fake_embeddings import FakeEmbeddings
from rest_helpers import loopback
from worker_support import eventually

from memoria.app import build_app
from memoria.maintenance import prepare_embedder
from memoria.settings import Settings
from persistence.database import Database
from providers.embedders.hashing import HashingEmbedder
from providers.embedders.minilm import MiniLMEmbedder

FIELD = 'mutation { createMemoryField(name: "notes") { id embedder dimension } }'
ADD = """mutation($f: ID!, $c: String!) { addMemory(fieldId: $f, input: {content: $c}) { id } }"""
SEARCH = """query($f: ID!, $q: String!) { searchMemories(fieldId: $f, query: $q, topK: 3) {
  memory { content } } }"""
SHOW = "query($f: ID!) { memoryField(id: $f) { embedder dimension memoryCount } }"
NOTES = [f"note {i}: the {word} is in the cupboard" for i, word in enumerate(["kettle", "flour"])]


async def _contents(client: GraphQLClient, field: str, query: str) -> list[str]:
    hits = (await client.data(SEARCH, {"f": field, "q": query}))["searchMemories"]
    return [h["memory"]["content"] for h in hits]


async def test_changed_embedder_reembeds_in_background(
    settings: Settings, fake_embeddings: tuple[FakeEmbeddings, str]
) -> None:
    state, url = fake_embeddings
    settings = loopback(settings)  # the fake embedding server listens on 127.0.0.1
    # First life: the hashing embedder.
    first = await RunningServer(build_app(settings, embedder=HashingEmbedder())).start()
    try:
        alice = await GraphQLClient(first.url).register("alice")
        created = (await alice.data(FIELD))["createMemoryField"]
        field = created["id"]
        for note in NOTES:
            await alice.data(ADD, {"f": field, "c": note})
        await _contents(alice, field, "kettle")  # loads (and later saves) the vector index
    finally:
        await first.stop()
    token = alice.token

    remote: dict[str, Any] = {
        "embedder": "openai",
        "embeddings_url": url,
        "embeddings_model": "fake-embed",
    }
    # Second life, no background work: the field waits, searched lexically, still writable.
    waiting = settings.with_(
        **remote, integrations=replace(settings.integrations, background_workers=False)
    )
    second = await RunningServer(build_app(waiting)).start()
    try:
        client = GraphQLClient(second.url, token)
        shown = (await client.data(SHOW, {"f": field}))["memoryField"]
        assert (shown["embedder"], shown["dimension"]) == (
            created["embedder"],
            created["dimension"],
        )
        assert (await _contents(client, field, "kettle"))[0] == NOTES[0]
        await client.data(ADD, {"f": field, "c": "note 2: the kettle descaler is under the sink"})
        assert len(await _contents(client, field, "kettle")) == 2
    finally:
        await second.stop()

    # Third life: the re-embedder moves the field onto the new embedder.
    third = await RunningServer(build_app(settings.with_(**remote))).start()
    try:
        client = GraphQLClient(third.url, token)
        moved = await eventually(
            lambda: client.data(SHOW, {"f": field}),
            accept=lambda d: d["memoryField"]["embedder"] == "openai:fake-embed",
        )
        assert moved["memoryField"]["dimension"] == 12
        assert moved["memoryField"]["memoryCount"] == 3
        embedded = {text for r in state.requests for text in r["body"]["input"]}
        assert set(NOTES) <= embedded, "the old memories were embedded by the new embedder"
        found = await _contents(client, field, "flour cupboard")
        assert found[0] == NOTES[1]
        assert "flour cupboard" in {t for r in state.requests for t in r["body"]["input"]}
        fresh = (await client.data(FIELD.replace("notes", "fresh")))["createMemoryField"]
        assert (fresh["embedder"], fresh["dimension"]) == ("openai:fake-embed", 12)
    finally:
        await third.stop()


EPISODE = """mutation($f: ID!, $c: String!, $t: DateTime!) {
  addMemory(fieldId: $f, input: {content: $c, kind: EPISODE, occurredAt: $t}) { id layer } }"""
LAYER = "query($id: ID!) { memory(id: $id) { layer } }"


async def test_promotion_sweep_moves_important_old_short_term_memories(
    server: RunningServer, gql: GraphQLClient
) -> None:
    placed: list[tuple[GraphQLClient, str, str]] = []
    for name in ("alice", "bobby"):  # the sweep covers every user's fields
        client = await gql.register(name)
        field = (await client.data(FIELD))["createMemoryField"]["id"]
        for when, label in (("2020-01-01T10:00:00Z", "old"), ("2999-01-01T10:00:00Z", "recent")):
            added = (
                await client.data(
                    EPISODE, {"f": field, "c": f"we chatted about {label} plans", "t": when}
                )
            )["addMemory"]
            assert added["layer"] == "SHORT_TERM"
            await client.data(
                "mutation($id: ID!) { updateMemory(id: $id, input: {importance: 0.6}) { id } }",
                {"id": added["id"]},
            )
            placed.append((client, added["id"], label))

    assert await server.runtime.promotion.sweep() == 2
    for client, memory_id, label in placed:
        layer = (await client.data(LAYER, {"id": memory_id}))["memory"]["layer"]
        assert layer == ("LONG_TERM" if label == "old" else "SHORT_TERM")
    assert await server.runtime.promotion.sweep() == 0  # nothing left to move


async def test_start_up_loads_a_local_model_before_the_first_request(tmp_path: Path) -> None:
    embedder = MiniLMEmbedder()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'memoria.db'}")
    try:
        assert not embedder.loaded
        assert await prepare_embedder(embedder, db)  # what the server runs at start-up
        assert embedder.loaded
    finally:
        embedder.close()
        await db.dispose()
