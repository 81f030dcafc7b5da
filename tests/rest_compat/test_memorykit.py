"""MemoryKit (memorykit-api.txt): conversations, messages, pagination, health, statistics,
camelCase fields and the ``{"error": "NOT_FOUND", "message", "details"}`` dialect."""

from __future__ import annotations

from rest_helpers import Account, Rest


async def test_conversation_and_message_shapes(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    created = await api.post(
        "/v1/conversations",
        json={
            "title": "Technical Discussion",
            "description": "Discussing .NET architecture",
            "tags": ["architecture", "dotnet"],
        },
    )
    assert created.status_code == 201
    conv = created.json()
    assert conv["userId"] == alice.user_id
    assert conv["title"] == "Technical Discussion"
    assert conv["description"] == "Discussing .NET architecture"
    assert conv["tags"] == ["architecture", "dotnet"]
    assert conv["messageCount"] == 0
    assert conv["lastActivityAt"].endswith("Z")

    added = await api.post(
        f"/v1/conversations/{conv['id']}/messages",
        json={
            "role": "user",
            "content": "How do I implement caching in .NET?",
            "tags": ["caching"],
        },
    )
    assert added.status_code == 201
    message = added.json()
    assert set(message) >= {
        "id",
        "conversationId",
        "role",
        "content",
        "timestamp",
        "importanceScore",
    }
    assert message["conversationId"] == conv["id"]
    assert 0 <= message["importanceScore"] <= 1

    # The quick-start curl sends JSON with curl -d's default form content type.
    curl_style = await api.post(
        f"/v1/conversations/{conv['id']}/messages",
        content=b'{"role": "assistant", "content": "Use IMemoryCache."}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert curl_style.status_code == 201

    listed = await api.get("/v1/conversations")
    assert listed.json()["items"][0]["messageCount"] == 2


async def test_pagination(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    for index in range(5):
        await api.post("/v1/conversations", json={"title": f"c{index}"})
    first = (await api.get("/v1/conversations", params={"page": 1, "pageSize": 2})).json()
    assert (first["page"], first["pageSize"], first["totalCount"]) == (1, 2, 5)
    assert [c["title"] for c in first["items"]] == ["c4", "c3"]
    second = (await api.get("/v1/conversations", params={"page": 2, "pageSize": 2})).json()
    assert [c["title"] for c in second["items"]] == ["c2", "c1"]
    third = (await api.get("/v1/conversations", params={"page": 3, "pageSize": 2})).json()
    assert [c["title"] for c in third["items"]] == ["c0"]
    beyond = (await api.get("/v1/conversations", params={"page": 9, "pageSize": 2})).json()
    assert beyond["items"] == []
    assert beyond["totalCount"] == 5
    for params, message in (
        ({"pageSize": 0}, "pageSize must be between 1 and 100"),
        ({"pageSize": 1000}, "pageSize must be between 1 and 100"),
        ({"page": -1}, "page must be between 1 and 10000"),
        ({"page": "two"}, "page must be an integer"),
    ):
        response = await api.get("/v1/conversations", params=params)
        assert response.status_code == 400
        assert response.json() == {
            "error": "BAD_REQUEST",
            "message": message,
            "details": {"field": next(iter(params))},
        }


async def test_errors_in_dialect(anon: Rest, alice: Account, bob: Account) -> None:
    api = anon.as_(alice.jwt)
    conv = (await api.post("/v1/conversations", json={"title": "mine"})).json()
    unknown = await api.post(
        "/v1/conversations/nope/messages", json={"role": "user", "content": "x"}
    )
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": "NOT_FOUND",
        "message": "Conversation not found",
        "details": {},
    }
    foreign = await anon.as_(bob.jwt).post(
        f"/v1/conversations/{conv['id']}/messages", json={"role": "user", "content": "x"}
    )
    assert foreign.status_code == 404
    bad_role = await api.post(
        f"/v1/conversations/{conv['id']}/messages", json={"role": "wizard", "content": "x"}
    )
    assert bad_role.status_code == 400
    assert bad_role.json()["error"] == "BAD_REQUEST"
    no_title = await api.post("/v1/conversations", json={"title": ""})
    assert no_title.json()["message"] == "title is required"
    no_auth = await anon.get("/v1/memory/statistics")
    assert no_auth.status_code == 401
    assert no_auth.json()["error"] == "UNAUTHORIZED"


async def test_health_and_statistics(anon: Rest, alice: Account) -> None:
    health = await anon.get("/v1/memory/health")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert health.json()["timestamp"].endswith("Z")
    api = anon.as_(alice.jwt)
    conv = (await api.post("/v1/conversations", json={"title": "t"})).json()
    await api.post(
        f"/v1/conversations/{conv['id']}/messages", json={"role": "user", "content": "a"}
    )
    stats = (await api.get("/v1/memory/statistics")).json()
    assert stats == {
        "userId": alice.user_id,
        "conversationCount": 1,
        "messageCount": 1,
        "factCount": stats["factCount"],
        "patternCount": stats["patternCount"],
    }
    assert isinstance(stats["factCount"], int)
    assert isinstance(stats["patternCount"], int)


async def test_query_and_context(anon: Rest, alice: Account, bob: Account) -> None:
    api = anon.as_(alice.jwt)
    conv = (await api.post("/v1/conversations", json={"title": "Caching"})).json()
    for content in ("How do I implement caching in .NET?", "Use IMemoryCache for caching."):
        await api.post(
            f"/v1/conversations/{conv['id']}/messages", json={"role": "user", "content": content}
        )
    context = await api.get(f"/v1/conversations/{conv['id']}/context", params={"query": "caching"})
    assert context.status_code == 200
    body = context.json()
    assert "=== Recent Conversation ===" in body["context"]
    assert "user: How do I implement caching in .NET?" in body["context"]
    assert body["totalTokens"] > 0
    assert body["retrievalLatencyMs"] >= 0

    answer = await api.post(
        f"/v1/conversations/{conv['id']}/query",
        json={"question": "What caching did we discuss?", "includeDebugInfo": True},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert isinstance(result["answer"], str)
    assert {"queryType", "layersUsed", "tokensUsed", "retrievalTimeMs"} <= set(result["debugInfo"])
    assert "WorkingMemory" in result["debugInfo"]["layersUsed"]
    for source in result["sources"]:
        assert source["type"] in (
            "WorkingMemory",
            "EpisodicMemory",
            "SemanticMemory",
            "ProceduralMemory",
        )
    plain = await api.post(f"/v1/conversations/{conv['id']}/query", json={"question": "x"})
    assert "debugInfo" not in plain.json()

    foreign = await anon.as_(bob.jwt).get(
        f"/v1/conversations/{conv['id']}/context", params={"query": "x"}
    )
    assert foreign.status_code == 404
    assert foreign.json()["error"] == "NOT_FOUND"
    tiny = await api.get(
        f"/v1/conversations/{conv['id']}/context", params={"query": "x", "maxTokens": 1}
    )
    assert tiny.status_code == 400
    assert tiny.json()["details"] == {"field": "maxTokens"}
