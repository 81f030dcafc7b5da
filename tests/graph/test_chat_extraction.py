"""Learning from chat with a real (fake, over loopback HTTP) LLM: after a reply the exchange
goes to an extraction call whose facts become memories; a fact that revises a known one
updates it with history; extraction calls are throttled per user, with rules in between."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from chat_helpers import SEND, add_provider, fake_llm_fixture  # noqa: F401  # fixture by name
from conftest import GraphQLClient, RunningServer
from fake_llm import FakeLLM, Reply
from rest_helpers import loopback
from worker_support import eventually

from memoria.app import build_app
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder

FACTS = """query($q: String!) { searchMemories(namespace: "default", query: $q, topK: 5) {
  memory { id content source kind } } }"""
HISTORY = "query($id: ID!) { memoryHistory(id: $id) { change oldContent newContent } }"


async def _search(client: GraphQLClient, query: str) -> dict[str, Any]:
    """The default field appears only once the background extraction made it: until then
    the search is NOT_FOUND, which counts as nothing learned yet."""
    body = await client.post(FACTS, {"q": query})
    if body.get("errors"):
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
        return {"searchMemories": []}
    return dict(body["data"])


def _facts(*facts: tuple[str, str | None]) -> Reply:
    body = {"facts": [{"fact": f, "replaces": r} for f, r in facts]}
    return Reply(tokens=[json.dumps(body)])


def _extractions(llm: FakeLLM) -> list[dict[str, Any]]:
    return [r for r in llm.requests if r not in llm.turns]


async def _server(settings: Settings, interval: float) -> RunningServer:
    tuned = loopback(settings).with_(
        extraction_interval_seconds=interval, llm_retry_pause_seconds=0.05
    )
    return await RunningServer(build_app(tuned, embedder=HashingEmbedder())).start()


@pytest.fixture
async def eager(settings: Settings) -> AsyncIterator[RunningServer]:
    running = await _server(settings, 0.0)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def throttled(settings: Settings) -> AsyncIterator[RunningServer]:
    running = await _server(settings, 3600.0)
    try:
        yield running
    finally:
        await running.stop()


async def test_llm_facts_are_added_then_revised_with_history(
    eager: RunningServer, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    client = GraphQLClient(eager.url)
    await add_provider(client, url)
    erin = await client.register("erin")
    llm.script(Reply(tokens=["Nice!"]), _facts(("Erin works as a baker in Lyon", None)))
    await erin.data(SEND, {"i": {"message": "I work as a baker in Lyon"}})
    found = await eventually(
        lambda: _search(erin, "baker Lyon"), accept=lambda d: d["searchMemories"]
    )
    fact = found["searchMemories"][0]["memory"]
    assert (fact["content"], fact["source"], fact["kind"]) == (
        "Erin works as a baker in Lyon",
        "chat",
        "FACT",
    )
    extraction = _extractions(llm)[0]
    assert "I work as a baker in Lyon" in json.dumps(extraction["messages"])

    llm.script(Reply(tokens=["Congrats!"]), _facts(("Erin works as a baker in Paris", fact["id"])))
    await erin.data(SEND, {"i": {"message": "I moved my bakery from Lyon to Paris"}})
    revised = await eventually(
        lambda: erin.data(HISTORY, {"id": fact["id"]}), accept=lambda d: len(d["memoryHistory"]) > 1
    )
    assert [h["change"] for h in revised["memoryHistory"]] == ["ADD", "UPDATE"]
    assert revised["memoryHistory"][1]["oldContent"] == "Erin works as a baker in Lyon"
    assert revised["memoryHistory"][1]["newContent"] == "Erin works as a baker in Paris"
    # The known fact (with its id) was shown to the model so it could say what it replaces.
    assert fact["id"] in json.dumps(_extractions(llm)[0]["messages"])


async def test_extraction_calls_are_throttled_per_user(
    throttled: RunningServer, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    client = GraphQLClient(throttled.url)
    await add_provider(client, url)
    erin = await client.register("erin")
    llm.script(Reply(tokens=["Ok."]), _facts(("Erin likes climbing", None)))
    await erin.data(SEND, {"i": {"message": "I like climbing"}})
    await eventually(lambda: _search(erin, "climbing"), accept=lambda d: d["searchMemories"])
    # Within the interval the model is not asked again: the rules learn from the turn instead.
    llm.script(Reply(tokens=["Ok."]))
    await erin.data(SEND, {"i": {"message": "My favourite colour is green"}})
    learned = await eventually(
        lambda: _search(erin, "favourite colour green"),
        accept=lambda d: any("green" in h["memory"]["content"] for h in d["searchMemories"]),
    )
    assert learned
    assert _extractions(llm) == []
    # Another user has a budget of their own.
    finn = await client.register("finn")
    llm.script(Reply(tokens=["Ok."]), _facts(("Finn plays the cello", None)))
    await finn.data(SEND, {"i": {"message": "I play the cello"}})
    await eventually(lambda: _search(finn, "cello"), accept=lambda d: d["searchMemories"])
    assert len(_extractions(llm)) == 1
