"""Senua Memory (senua-memory-api.txt): login with MFA, memory search/ingest/stats, rate
limits, in the ``{"error": {"code", "message", "details"}}`` dialect."""

from __future__ import annotations

import json
import time
from typing import Any

import pyotp
from conftest import RunningServer
from rest_helpers import Account, Rest, graphql


def _error(response: Any) -> tuple[int, str, str]:
    body = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return response.status_code, body["code"], body["message"]


async def test_login_returns_token_and_user(anon: Rest, alice: Account) -> None:
    response = await anon.post(
        "/api/auth/login", json={"username_or_email": "alice", "password": "correct-horse-1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert body["user"] == {
        "id": alice.user_id,
        "username": "alice",
        "email": "alice@example.com",
        "role": "user",
    }
    me = await anon.as_(body["access_token"]).get("/api/memory/stats")
    assert me.status_code == 200

    by_email = await anon.post(
        "/api/auth/login",
        json={"username_or_email": "alice@example.com", "password": "correct-horse-1"},
    )
    assert by_email.status_code == 200

    wrong = await anon.post(
        "/api/auth/login", json={"username_or_email": "alice", "password": "nope-nope-nope"}
    )
    assert _error(wrong)[:2] == (401, "unauthorized")
    missing = await anon.post("/api/auth/login", json={"username_or_email": "alice"})
    assert _error(missing) == (400, "bad_request", "password is required")


async def test_mfa_enrolment_then_login_needs_a_fresh_code(
    rest_server: RunningServer, anon: Rest, alice: Account
) -> None:
    begun = await graphql(
        rest_server.url,
        "mutation { beginMfaEnrollment { secret otpauthUri } }",
        {},
        token=alice.jwt,
    )
    secret = begun["beginMfaEnrollment"]["secret"]
    assert begun["beginMfaEnrollment"]["otpauthUri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(secret)
    now = time.time()
    confirmed = await graphql(
        rest_server.url,
        "mutation($c: String!) { confirmMfa(code: $c) { mfaEnabled } }",
        {"c": totp.at(now)},
        token=alice.jwt,
    )
    assert confirmed["confirmMfa"]["mfaEnabled"] is True

    login = {"username_or_email": "alice", "password": "correct-horse-1"}
    no_code = await anon.post("/api/auth/login", json=login)
    assert _error(no_code)[:2] == (401, "mfa_required")
    wrong = await anon.post("/api/auth/login", json={**login, "mfa_code": "000000"})
    assert _error(wrong)[:2] == (401, "invalid_mfa_code")
    # The code used to confirm was spent; the next step's code (one step of drift) works once.
    spent = await anon.post("/api/auth/login", json={**login, "mfa_code": totp.at(now)})
    assert _error(spent)[:2] == (401, "invalid_mfa_code")
    fresh = totp.at(now + 30)
    ok = await anon.post("/api/auth/login", json={**login, "mfa_code": fresh})
    assert ok.status_code == 200, ok.text
    replay = await anon.post("/api/auth/login", json={**login, "mfa_code": fresh})
    assert _error(replay)[:2] == (401, "invalid_mfa_code")


async def test_memory_ingest_search_and_stats(anon: Rest, alice: Account, bob: Account) -> None:
    api = anon.as_(alice.jwt)
    for content, source, at in (
        ("Meeting notes from the roadmap review", "notion", "2025-01-15T10:30:00Z"),
        ("Email from Carol about the roadmap budget", "email", "2025-02-01T09:00:00Z"),
        ("Pushed the fix for the login bug", "github", "2025-03-10T12:00:00Z"),
    ):
        created = await api.post(
            "/api/memory", json={"content": content, "source": source, "timestamp": at}
        )
        assert created.status_code == 201, created.text
        assert created.json()["timestamp"] == at
    found = await api.get("/api/memory/search", params={"q": "roadmap"})
    assert found.status_code == 200
    body = found.json()
    assert body["total"] == len(body["results"]) >= 2
    assert set(body["results"][0]) == {"id", "content", "source", "similarity", "timestamp"}

    by_source = await api.get("/api/memory/search", params={"q": "roadmap", "source": "email"})
    assert [r["source"] for r in by_source.json()["results"]] == ["email"]
    dated = await api.get(
        "/api/memory/search",
        params={"q": "roadmap", "from_date": "2025-01-20", "to_date": "2025-12-31"},
    )
    assert {r["source"] for r in dated.json()["results"]} <= {"email", "github"}
    limited = await api.get("/api/memory/search", params={"q": "roadmap", "limit": 1})
    assert len(limited.json()["results"]) == 1

    stats = (await api.get("/api/memory/stats")).json()
    assert stats["total_memories"] == 3
    assert stats["by_source"] == {"notion": 1, "email": 1, "github": 1}
    assert stats["short_term"] + stats["long_term"] == 3
    assert "last_sync" in stats

    # Bob sees none of it.
    other = await anon.as_(bob.jwt).get("/api/memory/search", params={"q": "roadmap"})
    assert other.json() == {"results": [], "total": 0}


async def test_search_bad_input(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    assert _error(await api.get("/api/memory/search")) == (400, "bad_request", "q is required")
    for limit, message in (
        ("0", "limit must be between 1 and 100"),
        ("-1", "limit must be between 1 and 100"),
        ("100000000000", "limit must be between 1 and 100"),
        ("ten", "limit must be an integer"),
    ):
        response = await api.get("/api/memory/search", params={"q": "x", "limit": limit})
        assert _error(response) == (400, "bad_request", message)
    bad_date = await api.get("/api/memory/search", params={"q": "x", "from_date": "yesterday"})
    assert _error(bad_date)[:2] == (400, "bad_request")
    unauthenticated = await anon.get("/api/memory/search", params={"q": "x"})
    assert _error(unauthenticated)[:2] == (401, "unauthorized")


async def test_refused_tokens_get_the_documented_error(anon: Rest, alice: Account) -> None:
    # The document's example: {"error": {"code": "unauthorized",
    # "message": "Invalid or expired token", "details": {}}}, for any refused bearer token.
    expected = {
        "error": {"code": "unauthorized", "message": "Invalid or expired token", "details": {}}
    }
    for token in (None, "not-a-jwt", alice.jwt + "x", "mk_deadbeef_not-a-key"):
        response = await anon.as_(token).get("/api/memory/stats")
        assert (response.status_code, response.json()) == (401, expected), token
        assert "X-RateLimit-Remaining" in response.headers
    # A failed login keeps its own wording: it is not a token refusal.
    wrong = await anon.post(
        "/api/auth/login", json={"username_or_email": "alice", "password": "nope-nope-nope"}
    )
    assert _error(wrong)[:2] == (401, "unauthorized")
    assert wrong.json()["error"]["message"] != "Invalid or expired token"


async def test_chat_json_and_stream(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    await api.post("/api/memory", json={"content": "Alice's dog is called Rex", "source": "email"})
    reply = await api.post("/api/chat", json={"message": "What is my dog called?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"id", "conversation_id", "response", "model", "memory_used", "tokens"}
    assert "Rex" in body["response"]
    assert body["memory_used"]["long_term"] + body["memory_used"]["short_term"] >= 1
    assert "email" in body["memory_used"]["sources"]
    assert set(body["tokens"]) == {"prompt", "completion"}

    follow = await api.post(
        "/api/chat",
        json={"message": "And again?", "conversation_id": body["conversation_id"], "stream": True},
    )
    assert follow.headers["content-type"].startswith("text/event-stream")
    events = [block for block in follow.text.split("\n\n") if block.strip()]
    assert events[0].startswith("event: start")
    assert events[-1].startswith("event: done")
    final = json.loads(events[-1].split("data: ", 1)[1])
    assert final["conversation_id"] == body["conversation_id"]

    unknown = await api.post("/api/chat", json={"message": "x", "conversation_id": "nope"})
    assert _error(unknown)[:2] == (404, "not_found")
    empty = await api.post("/api/chat", json={"message": ""})
    assert _error(empty) == (400, "bad_request", "message is required")


async def test_models(anon: Rest, alice: Account) -> None:
    models = await anon.as_(alice.jwt).get("/api/models")
    body = models.json()
    assert body["default"] == "memoria-extractive-no-llm"
    assert {"id": "memoria-extractive-no-llm", "provider": "extractive", "status": "ready"} in body[
        "models"
    ]


async def test_date_filters_take_bare_dates_inclusively(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    created = await api.post(
        "/api/memory",
        json={"content": "Meeting notes from the roadmap review", "timestamp": "2025-01-15T10:30Z"},
    )
    assert created.status_code == 201, created.text

    async def found(**dates: str) -> int:
        response = await api.get("/api/memory/search", params={"q": "roadmap", **dates})
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    # "to_date=2025-01-15" is an ISO date: the memory of that day is inside the range.
    assert await found(to_date="2025-01-15") == 1
    assert await found(from_date="2025-01-15", to_date="2025-01-15") == 1
    assert await found(from_date="2025-01-15") == 1
    assert await found(to_date="2025-01-14") == 0
    assert await found(from_date="2025-01-16") == 0
    # A full date-time is taken as written.
    assert await found(to_date="2025-01-15T10:00:00Z") == 0
    assert await found(to_date="2025-01-15T10:30:00Z") == 1


async def test_sentech_query_to_date_includes_the_day(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.api_key)
    field_id = (await api.post("/fields/create-memory-field", json={"name": "d"})).json()[
        "field_id"
    ]
    await api.post(
        f"/fields/{field_id}/memories",
        json={"content": "Roadmap review", "timestamp": "2025-01-15T10:30:00Z"},
    )
    path = f"/fields/{field_id}/memories/query"
    same_day = await api.post(path, json={"query": "roadmap", "to_date": "2025-01-15"})
    assert len(same_day.json()["results"]) == 1
    before = await api.post(path, json={"query": "roadmap", "to_date": "2025-01-14"})
    assert before.json()["results"] == []
