"""SID (sid-memory-chat-completions.txt) and Sentech chat completions: the official ``openai``
package pointed at Memoria, streaming and not, with memories kept per namespace."""

from __future__ import annotations

import json

import openai
import pytest
from conftest import RunningServer
from rest_helpers import Account, Rest
from sqlalchemy import delete, func, select

from persistence.tables.accounts import users
from persistence.tables.conversations import conversations
from persistence.tables.memories import memory_fields


def _client(server: RunningServer, token: str, path: str = "/v1") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + path, api_key=token, max_retries=0)


async def test_openai_package_non_streaming(rest_server: RunningServer, alice: Account) -> None:
    client = _client(rest_server, alice.api_key)
    reply = await client.chat.completions.create(
        model="memoria-extractive-no-llm",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"},
        ],
        temperature=0.7,
        top_p=0.9,
        max_tokens=150,
        frequency_penalty=0.4,
        presence_penalty=0.7,
        stop=["\n\n\n"],
        user="end-user-1",
        extra_body={"top_k": 90},
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "memoria-extractive-no-llm"
    assert reply.choices[0].message.role == "assistant"
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


async def test_openai_package_streaming_with_usage(
    rest_server: RunningServer, alice: Account
) -> None:
    client = _client(rest_server, alice.jwt)
    stream = await client.chat.completions.create(
        model="memoria-extractive-no-llm",
        messages=[{"role": "user", "content": "What do you know?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length")
    assert finishes.count(None) == len(finishes) - 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text


async def test_raw_stream_ends_with_done(anon: Rest, alice: Account) -> None:
    response = await anon.as_(alice.jwt).post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in p for p in parsed)  # only with stream_options.include_usage
    assert "X-RateLimit-Limit" in response.headers


async def test_namespace_memories_reach_the_reply_and_the_exchange_is_stored(
    rest_server: RunningServer, anon: Rest, alice: Account
) -> None:
    api = anon.as_(alice.jwt)
    field = await api.post("/fields/create-memory-field", json={"name": "user123"})
    await api.post(
        f"/fields/{field.json()['field_id']}/memories",
        json={"content": "Alice's favourite colour is teal"},
    )
    client = _client(rest_server, alice.jwt, "/v1/memory")
    reply = await client.chat.completions.create(
        model="memoria-extractive-no-llm",
        messages=[{"role": "user", "content": "What is my favourite colour?"}],
        extra_query={"namespace": "user123"},
    )
    # The built-in extractive model answers from retrieved memories only.
    assert "teal" in (reply.choices[0].message.content or "")
    other = await client.chat.completions.create(
        model="memoria-extractive-no-llm",
        messages=[{"role": "user", "content": "What is my favourite colour?"}],
        extra_query={"namespace": "elsewhere"},
    )
    assert "teal" not in (other.choices[0].message.content or "")
    conversations = (await api.get("/v1/conversations")).json()
    assert conversations["totalCount"] == 2


async def test_openai_errors(rest_server: RunningServer, anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    for path in ("/v1/chat/completions", "/v1/memory/chat/completions"):
        empty = await api.post(path, json={"messages": []})
        assert empty.status_code == 400
        assert empty.json() == {
            "error": {
                "message": "Messages must be a non-empty array",
                "type": "invalid_request_error",
                "param": "messages",
                "code": None,
            }
        }
        missing = await api.post(path, json={"model": "x"})
        assert missing.json()["error"]["message"] == "Messages must be a non-empty array"
        unknown = await api.post(
            path, json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}
        )
        assert unknown.status_code == 400
        assert unknown.json()["error"]["message"] == "Unsupported model"
        assert unknown.json()["error"]["code"] == "model_not_found"
        bad_key = await anon.as_("mk_nope").post(path, json={"messages": []})
        assert bad_key.status_code == 401
        assert bad_key.json()["error"]["message"] == "Invalid API key"
        assert bad_key.json()["error"]["code"] == "invalid_api_key"
        hot = await api.post(
            path, json={"messages": [{"role": "user", "content": "x"}], "temperature": 9}
        )
        assert hot.status_code == 400
        assert hot.json()["error"]["param"] == "temperature"
        for not_an_array in ("hello", {"role": "user", "content": "x"}, 3, None):
            wrong = await api.post(path, json={"messages": not_an_array})
            assert wrong.status_code == 400, not_an_array
            assert wrong.json()["error"]["message"] == "Messages must be a non-empty array"
            assert wrong.json()["error"]["param"] == "messages"
    with pytest.raises(openai.AuthenticationError):
        await _client(rest_server, "mk_nope").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )


async def test_deleted_user_token_is_401_on_both_completion_routes(
    rest_server: RunningServer, anon: Rest, alice: Account
) -> None:
    # Only the Sentech memory routes document 404 "User not found"; the completion routes
    # list 401 "Invalid API key" (and the contract says 401 outside the Sentech routes).
    async with rest_server.runtime.db.engine.begin() as conn:
        await conn.execute(delete(users).where(users.c.id == alice.user_id))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    for token in (alice.jwt, alice.api_key):
        for path in ("/v1/chat/completions", "/v1/memory/chat/completions"):
            response = await anon.as_(token).post(path, json=body)
            assert response.status_code == 401, (path, response.text)
            assert response.json() == {
                "error": {
                    "message": "Invalid API key",
                    "type": "authentication_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
            assert "X-RateLimit-Limit" in response.headers
    async with rest_server.runtime.db.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(conversations))).scalar_one()
    assert count == 0


async def test_refused_sid_requests_create_no_namespace(
    rest_server: RunningServer, anon: Rest, alice: Account
) -> None:
    api = anon.as_(alice.jwt)

    async def field_count() -> int:
        async with rest_server.runtime.db.engine.connect() as conn:
            query = select(func.count()).select_from(memory_fields)
            return int((await conn.execute(query)).scalar_one())

    before = await field_count()
    user = [{"role": "user", "content": "Hello!"}]
    for body, message in (
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "The last message must be"),
        ({"messages": user, "model": "no-such-model"}, "Unsupported model"),
        ({"messages": user, "stop": 5}, "stop must be"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ):
        refused = await api.post(
            "/v1/memory/chat/completions", params={"namespace": "brand-new"}, json=body
        )
        assert refused.status_code == 400, body
        assert refused.json()["error"]["message"].startswith(message), refused.text
    too_long = await api.post(
        "/v1/memory/chat/completions",
        params={"namespace": "n" * 1000},
        json={"messages": user, "model": "memoria-extractive-no-llm"},
    )
    assert too_long.status_code == 400, too_long.text
    assert await field_count() == before
    ok = await api.post(
        "/v1/memory/chat/completions",
        params={"namespace": "brand-new"},
        json={"messages": user, "model": "memoria-extractive-no-llm"},
    )
    assert ok.status_code == 200, ok.text
    assert await field_count() == before + 1


async def test_openai_package_lists_models(rest_server: RunningServer, alice: Account) -> None:
    """``client.models.list()`` works against /v1 (Sentech) and /v1/memory (SID), and names
    the model the completions above use; without a key it is the OpenAI 401."""
    for path in ("/v1", "/v1/memory"):
        listed = await _client(rest_server, alice.api_key, path).models.list()
        ids = [m.id for m in listed.data]
        assert "memoria-extractive-no-llm" in ids
        assert all(m.object == "model" and m.created > 0 for m in listed.data)
    with pytest.raises(openai.AuthenticationError):
        await _client(rest_server, "mk_not_a_key", "/v1").models.list()
