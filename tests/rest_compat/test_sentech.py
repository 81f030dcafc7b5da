"""Sentech (sentech-api.txt): fields, memories and query, exactly as the document writes them."""

from __future__ import annotations

from conftest import RunningServer
from rest_helpers import Account, Rest
from sqlalchemy import delete, func, select

from persistence.tables.accounts import users
from persistence.tables.memories import memories


async def _field(api: Rest, name: str = "Work") -> str:
    response = await api.post("/fields/create-memory-field", json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Memory field created successfully"
    return str(body["field_id"])


async def test_create_field_add_and_query_memories(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.api_key)  # Sentech authenticates with API keys
    field_id = await _field(api)

    added = await api.post(
        f"/fields/{field_id}/memories",
        json={"content": "Alice is allergic to peanuts", "metadata": {"topic": "health"}},
    )
    assert added.status_code == 201
    assert added.json()["message"] == "Memory added successfully"
    data = added.json()["data"]
    assert data["content"] == "Alice is allergic to peanuts"
    assert data["metadata"] == {"topic": "health"}
    assert data["created_at"].endswith("Z")
    await api.post(f"/fields/{field_id}/memories", json={"content": "The office is in Lisbon"})

    found = await api.post(
        f"/fields/{field_id}/memories/query", json={"query": "peanut allergy", "top_k": 5}
    )
    assert found.status_code == 200
    results = found.json()["results"]
    assert results[0]["id"] == data["id"]
    assert set(results[0]) == {"id", "content", "score", "metadata", "created_at"}
    assert isinstance(results[0]["score"], float)

    # top_k defaults to 5 and bounds the result count; JWTs work too.
    jwt_api = anon.as_(alice.jwt)
    one = await jwt_api.post(
        f"/fields/{field_id}/memories/query", json={"query": "office", "top_k": 1}
    )
    assert len(one.json()["results"]) == 1


async def test_documented_errors(anon: Rest, alice: Account, bob: Account) -> None:
    api = anon.as_(alice.api_key)
    field_id = await _field(api)

    missing_name = await api.post("/fields/create-memory-field", json={})
    assert (missing_name.status_code, missing_name.json()) == (
        400,
        {"error": "Field name is required"},
    )
    blank_name = await api.post("/fields/create-memory-field", json={"name": "   "})
    assert blank_name.json() == {"error": "Field name is required"}

    no_content = await api.post(f"/fields/{field_id}/memories", json={"content": ""})
    assert (no_content.status_code, no_content.json()) == (400, {"error": "Content is required"})

    no_query = await api.post(f"/fields/{field_id}/memories/query", json={"top_k": 3})
    assert (no_query.status_code, no_query.json()) == (400, {"error": "Query text is required"})

    unknown = await api.post("/fields/not-a-field/memories", json={"content": "x"})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Memory field not found"})

    # Another user's field is not found, never forbidden (existence is not leaked).
    foreign = await anon.as_(bob.api_key).post(
        f"/fields/{field_id}/memories", json={"content": "sneaky"}
    )
    assert (foreign.status_code, foreign.json()) == (404, {"error": "Memory field not found"})

    bad_key = await anon.as_("mk_deadbeef_not-a-key").post(
        "/fields/create-memory-field", json={"name": "x"}
    )
    assert (bad_key.status_code, bad_key.json()) == (401, {"error": "Invalid API key"})
    no_key = await anon.post("/fields/create-memory-field", json={"name": "x"})
    assert (no_key.status_code, no_key.json()) == (401, {"error": "Invalid API key"})


async def test_top_k_bounds_and_types(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.api_key)
    field_id = await _field(api)
    path = f"/fields/{field_id}/memories/query"
    for bad, message in (
        (0, "top_k must be between 1 and 100"),
        (-3, "top_k must be between 1 and 100"),
        (10**12, "top_k must be between 1 and 100"),
        ("5", "top_k must be an integer"),
        (2.5, "top_k must be an integer"),
        (True, "top_k must be an integer"),
    ):
        response = await api.post(path, json={"query": "x", "top_k": bad})
        assert (response.status_code, response.json()) == (400, {"error": message}), bad
    wrong_type = await api.post(f"/fields/{field_id}/memories", json={"content": 42})
    assert wrong_type.json() == {"error": "content must be a string"}


async def test_deleted_user_token_is_user_not_found(
    rest_server: RunningServer, anon: Rest, alice: Account
) -> None:
    api = anon.as_(alice.jwt)
    field_id = await _field(api)
    async with rest_server.runtime.db.engine.begin() as conn:
        await conn.execute(delete(users).where(users.c.id == alice.user_id))
    response = await api.post(f"/fields/{field_id}/memories", json={"content": "x"})
    assert (response.status_code, response.json()) == (404, {"error": "User not found"})
    async with rest_server.runtime.db.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(memories))).scalar_one()
    assert count == 0


async def test_supported_models_is_open(anon: Rest) -> None:
    response = await anon.get("/supported-models")
    assert response.status_code == 200
    models = response.json()["models"]
    assert {"model_name", "price"} <= set(models[0])
    assert any(m["model_name"] == "memoria-extractive-no-llm" and m["price"] == 0 for m in models)
