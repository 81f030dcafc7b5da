"""Spend, providers and users' keys, context packs, messageAdded and learning from chat."""

from __future__ import annotations

import asyncio

from chat_helpers import (  # noqa: F401  # fixtures are used by name
    CHAT,
    SEND,
    TransportWs,
    add_provider,
    admin,
    chat_server_fixture,
    client_fixture,
    fake_llm_fixture,
)
from conftest import GraphQLClient, RunningServer
from fake_llm import FakeLLM, Reply

from domain.llm import EXTRACTIVE_MODEL

SET_KEY = """mutation($p: String!, $k: String!) { setUserLlmConfig(input: {provider: $p, apiKey: $k}) {
  id providerId maskedKey } }"""
PROVIDERS = """{ providers { name kind hasApiKey models { name inputPricePerM } } models { name provider contextWindow } }"""
CONTEXT = """query($c: ID!, $q: String!, $m: Int) { context(conversationId: $c, query: $q, maxTokens: $m) {
  items { layer text tokens source refId } layers { layer count } sources tokens maxTokens tokenizer dropped prompt } }"""
ADD_FIELD = """mutation($n: String!) { createMemoryField(name: $n) { id } }"""
ADD_MEMORY = (
    """mutation($f: ID!, $c: String!) { addMemory(fieldId: $f, input: {content: $c}) { id } }"""
)
CONVERSATION = (
    """mutation($f: ID) { createConversation(input: {title: "chat", fieldId: $f}) { id } }"""
)
ADD_MESSAGE = """mutation($c: ID!, $t: String!) { addMessage(conversationId: $c, input: {role: "user", content: $t}) { id } }"""
SEARCH = """query($f: ID!, $q: String!) { searchMemories(fieldId: $f, query: $q) { memory { content source } } }"""
FIELDS = """{ memoryFields { id name memoryCount } }"""
MESSAGE_ADDED = """subscription($c: ID!) { messageAdded(conversationId: $c) { id role content } }"""


async def set_balance(server: RunningServer, username: str, micros: int) -> None:
    async with server.runtime.db.unit_of_work() as uow:
        user = await uow.users.by_login(username)
        user.balance_micros = micros
        await uow.users.update(user)
        await uow.commit()


async def balance(server: RunningServer, username: str) -> int:
    async with server.runtime.db.unit_of_work() as uow:
        return int((await uow.users.by_login(username)).balance_micros)


async def test_priced_model_refuses_without_balance_and_charges_exactly(
    chat_server: RunningServer, client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    await add_provider(client, url, model="paid-gpt", input_price=3.0, output_price=15.0)
    gina = await client.register("gina")
    error = await gina.error(SEND, {"i": {"message": "hello", "model": "paid-gpt"}})
    assert error.code == "INSUFFICIENT_BALANCE"
    assert llm.requests == []  # refused before any upstream call
    ws = await TransportWs.open(chat_server, {"Authorization": f"Bearer {gina.token}"})
    try:
        await ws.subscribe(CHAT, {"i": {"message": "hello", "model": "paid-gpt"}})
        refused = await ws.next()
        assert refused["errors"][0]["extensions"]["code"] == "INSUFFICIENT_BALANCE"
    finally:
        await ws.close()
    assert llm.requests == []

    await set_balance(chat_server, "gina", 1_000_000)
    llm.script(Reply(tokens=["a", "b", "c", "d"], prompt_tokens=1000))
    result = (await gina.data(SEND, {"i": {"message": "hello", "model": "paid-gpt"}}))[
        "sendMessage"
    ]
    # 1000 input tokens at $3/M + 4 output tokens at $15/M = 3000 + 60 micro-dollars.
    assert result["usage"] == {"promptTokens": 1000, "completionTokens": 4, "costMicros": 3060}
    assert await balance(chat_server, "gina") == 1_000_000 - 3060


async def test_unpriced_and_own_key_turns_are_free_and_keys_stay_secret(
    chat_server: RunningServer, client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    await add_provider(client, url, model="free-gpt")
    await add_provider(
        client, url, name="paid", model="paid-gpt", input_price=1.0, output_price=1.0
    )
    hank = await client.register("hank")
    result = (await hank.data(SEND, {"i": {"message": "hi", "model": "free-gpt"}}))["sendMessage"]
    assert result["usage"]["costMicros"] == 0
    # The chat turn's request: the extraction job after a turn may call later, and may use
    # the admin's key whatever the user's.
    assert llm.turn_headers[-1]["authorization"] == "Bearer sk-admin-key-123"
    # The user's own key: used upstream, not charged, never shown back.
    own = "sk-hank-personal-key-9876"
    config = (await hank.data(SET_KEY, {"p": "paid", "k": own}))["setUserLlmConfig"]
    assert config["maskedKey"] == "sk-…9876"
    assert own not in str(config)
    result = (await hank.data(SEND, {"i": {"message": "hi", "model": "paid-gpt"}}))["sendMessage"]
    assert llm.turn_headers[-1]["authorization"] == f"Bearer {own}"
    assert result["usage"]["costMicros"] == 0
    assert await balance(chat_server, "hank") == 0
    async with chat_server.runtime.db.unit_of_work() as uow:
        stored = await uow.llm.user_config(
            user_id=(await uow.users.by_login("hank")).id,
            provider_id=(await uow.llm.provider_by_name("paid")).id,
        )
        provider = await uow.llm.provider_by_name("fake")
    assert own not in stored.api_key_encrypted  # encrypted at rest
    assert "sk-admin-key-123" not in str(provider.api_key_encrypted)


async def test_providers_are_admin_managed(
    client: GraphQLClient, fake_llm: tuple[FakeLLM, str]
) -> None:
    _llm, url = fake_llm
    ivy = await client.register("ivy")
    error = await ivy.error(
        """mutation { createProvider(input: {name: "x", kind: "openai", apiEndpoint: "http://127.0.0.1:1/v1"}) { id } }"""
    )
    assert error.code == "FORBIDDEN"
    await add_provider(client, url, model="m1", input_price=0.5)
    root = await admin(client)
    bad = await root.error(
        """mutation { createProvider(input: {name: "y", kind: "psychic", apiEndpoint: "http://127.0.0.1:1"}) { id } }"""
    )
    assert bad.code == "BAD_USER_INPUT"
    dup = await root.error(
        """mutation { createProvider(input: {name: "fake", kind: "openai", apiEndpoint: "http://127.0.0.1:1/v1"}) { id } }"""
    )
    assert dup.code == "BAD_USER_INPUT"
    listing = await ivy.data(PROVIDERS)
    names = {p["name"]: p for p in listing["providers"]}
    assert names["fake"]["hasApiKey"] is True
    assert names["fake"]["kind"] == "openai"
    assert names["fake"]["models"] == [{"name": "m1", "inputPricePerM": 0.5}]
    assert "sk-admin-key-123" not in str(listing)
    assert {m["name"] for m in listing["models"]} == {"m1", EXTRACTIVE_MODEL}


async def test_context_pack_reports_layers_sources_and_tokens(client: GraphQLClient) -> None:
    jill = await client.register("jill")
    field = (await jill.data(ADD_FIELD, {"n": "notes"}))["createMemoryField"]["id"]
    await jill.data(ADD_MEMORY, {"f": field, "c": "Jill's cat is called Miso"})
    conv = (await jill.data(CONVERSATION, {"f": field}))["createConversation"]["id"]
    await jill.data(ADD_MESSAGE, {"c": conv, "t": "I adopted a cat last year"})
    pack = (await jill.data(CONTEXT, {"c": conv, "q": "What is my cat called?", "m": 500}))[
        "context"
    ]
    layers = {entry["layer"]: entry["count"] for entry in pack["layers"]}
    assert layers["long_term"] >= 1
    assert layers["working"] == 1
    assert layers["procedural"] == 0
    assert "Jill's cat is called Miso" in pack["prompt"]
    assert set(pack["sources"]) >= {"api", "conversation"}
    assert 0 < pack["tokens"] <= pack["maxTokens"] == 500
    assert pack["tokenizer"].startswith("hf:")
    tiny = (await jill.data(CONTEXT, {"c": conv, "q": "What is my cat called?", "m": 70}))[
        "context"
    ]
    assert tiny["tokens"] <= 70
    assert tiny["dropped"] >= 1
    error = await jill.error(CONTEXT, {"c": conv, "q": "x", "m": 10})
    assert error.code == "BAD_USER_INPUT"
    other = await client.register("kate")
    assert (await other.error(CONTEXT, {"c": conv, "q": "x"})).code == "NOT_FOUND"


async def test_message_added_sees_user_and_assistant_messages_and_learns(
    chat_server: RunningServer, client: GraphQLClient
) -> None:
    liam = await client.register("liam")
    conv = (await liam.data(CONVERSATION, {"f": None}))["createConversation"]["id"]
    ws = await TransportWs.open(chat_server, {"Authorization": f"Bearer {liam.token}"})
    try:
        await ws.subscribe(MESSAGE_ADDED, {"c": conv})
        await asyncio.sleep(0.2)  # let the subscription register before the turn
        result = (
            await liam.data(
                SEND,
                {"i": {"message": "My name is Liam and I live in Oslo.", "conversationId": conv}},
            )
        )["sendMessage"]
        first = (await asyncio.wait_for(ws.next(), 5))["data"]["messageAdded"]
        second = (await asyncio.wait_for(ws.next(), 5))["data"]["messageAdded"]
    finally:
        await ws.close()
    assert (first["role"], first["content"]) == ("user", "My name is Liam and I live in Oslo.")
    assert second["role"] == "assistant"
    assert second["id"] == result["message"]["id"]
    assert result["message"]["model"] == EXTRACTIVE_MODEL
    # Another user cannot listen to this conversation.
    mia = await client.register("mia")
    ws2 = await TransportWs.open(chat_server, {"Authorization": f"Bearer {mia.token}"})
    try:
        await ws2.subscribe(MESSAGE_ADDED, {"c": conv})
        assert (await ws2.next())["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        await ws2.close()
    # After the reply, rules (no LLM configured) turned the statement into a memory, and
    # both messages were kept as they were, apart from the facts.
    await chat_server.runtime.chat.extractor.drain()
    await chat_server.runtime.chat.recall.drain()
    fields = {f["name"]: f for f in (await liam.data(FIELDS))["memoryFields"]}
    assert set(fields) == {"default", "conversations"}
    assert fields["conversations"]["memoryCount"] == 2
    facts = await liam.data(SEARCH, {"f": fields["default"]["id"], "q": "Liam Oslo"})
    assert {"content": "My name is Liam and I live in Oslo", "source": "chat"} in [
        h["memory"] for h in facts["searchMemories"]
    ]
    # The next turn quotes it back from memory.
    again = (await liam.data(SEND, {"i": {"message": "Where do I live, Oslo?"}}))["sendMessage"]
    assert "My name is Liam and I live in Oslo" in again["message"]["content"]
