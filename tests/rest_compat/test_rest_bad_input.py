"""Bad input across the families: the documented status and message in the right dialect,
and nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import RunningServer
from rest_helpers import Account, Rest, roomy
from sqlalchemy import func, select

from memoria.settings import Settings
from persistence.tables.conversations import conversations, messages
from persistence.tables.memories import memories

LIMIT = 4096


@pytest.fixture
def rest_settings(settings: Settings) -> Settings:
    return roomy(settings.with_(max_request_bytes=LIMIT, max_upload_bytes=LIMIT * 2))


async def _rows(server: RunningServer) -> tuple[int, int, int]:
    async with server.runtime.db.engine.connect() as conn:
        counts = []
        for table in (memories, conversations, messages):
            counts.append(
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            )
    return counts[0], counts[1], counts[2]


# (path template, valid body) per family; {field}/{conv} are filled in per test.
ROUTES = {
    "sentech": ("/fields/{field}/memories", {"content": "hello"}),
    "senua": ("/api/memory", {"content": "hello"}),
    "memorykit": ("/v1/conversations/{conv}/messages", {"role": "user", "content": "hello"}),
    "chat_api": ("/chat/messages", {"conversation_id": "{conv}", "role": "user", "content": "hi"}),
}


def _message(family: str, body: dict) -> str:
    if family == "senua":
        return body["error"]["message"]
    if family == "memorykit":
        return body["message"]
    return body["error"]


@pytest.fixture
async def targets(anon: Rest, alice: Account) -> AsyncIterator[dict[str, tuple[str, dict]]]:
    api = anon.as_(alice.jwt)
    field = (await api.post("/fields/create-memory-field", json={"name": "f"})).json()["field_id"]
    conv = (await api.post("/v1/conversations", json={"title": "c"})).json()["id"]
    out = {}
    for family, (path, body) in ROUTES.items():
        filled = {k: (v.format(conv=conv) if isinstance(v, str) else v) for k, v in body.items()}
        out[family] = (path.format(field=field, conv=conv), filled)
    return out


async def test_malformed_json_wrong_type_and_content_type(
    rest_server: RunningServer, anon: Rest, alice: Account, targets: dict
) -> None:
    api = anon.as_(alice.jwt)
    before = await _rows(rest_server)
    for family, (path, body) in targets.items():
        broken = await api.post(
            path, content=b'{"content": ', headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 400, family
        assert _message(family, broken.json()).startswith("Malformed JSON body"), family

        xml = await api.post(
            path, content=b"<content/>", headers={"Content-Type": "application/xml"}
        )
        assert xml.status_code == 415, family
        assert _message(family, xml.json()) == "Content-Type must be application/json"

        array = await api.post(path, json=[1, 2])
        assert array.status_code == 400
        assert _message(family, array.json()) == "Request body must be a JSON object"

        wrong = await api.post(path, json={**body, "content": ["not", "text"]})
        assert wrong.status_code == 400, family
        assert "must be a string" in _message(family, wrong.json())
    assert await _rows(rest_server) == before


async def test_oversized_bodies_are_413(
    rest_server: RunningServer, anon: Rest, alice: Account, targets: dict
) -> None:
    api = anon.as_(alice.jwt)
    before = await _rows(rest_server)
    huge = {"content": "x" * (LIMIT + 1), "role": "user"}
    for family, (path, body) in targets.items():
        declared = await api.post(path, json={**body, **huge})
        assert declared.status_code == 413, family
        assert "too large" in _message(family, declared.json())

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"content": "'
            for _ in range(LIMIT // 512 + 2):
                yield b"y" * 512
            yield b'"}'

        streamed = await api.post(
            path, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413, family
    upload = await api.post(
        "/chat/attachments",
        data={"message_id": "m", "file_type": "t"},
        files={"file": ("big.bin", b"z" * (LIMIT * 3), "application/octet-stream")},
    )
    assert (upload.status_code, upload.json()["error"][:23]) == (413, "Request body too large ")
    assert await _rows(rest_server) == before


async def test_missing_and_empty_fields(
    rest_server: RunningServer, anon: Rest, alice: Account, targets: dict
) -> None:
    api = anon.as_(alice.jwt)
    before = await _rows(rest_server)
    for family, (path, body) in targets.items():
        for empty in (
            {},
            {**body, "content": ""},
            {**body, "content": "   "},
            {**body, "content": None},
        ):
            response = await api.post(path, json=empty)
            assert response.status_code == 400, (family, empty)
        # Documented wording where the document gives one.
    sentech_path = targets["sentech"][0]
    assert (await api.post(sentech_path, json={})).json() == {"error": "Content is required"}
    assert await _rows(rest_server) == before


async def test_unknown_and_foreign_ids(
    rest_server: RunningServer, anon: Rest, alice: Account, bob: Account, targets: dict
) -> None:
    before = await _rows(rest_server)
    intruder = anon.as_(bob.jwt)
    for family, (path, body) in targets.items():
        if family == "senua":
            continue  # writes to the caller's own default space: no foreign id to name
        response = await intruder.post(path, json=body)
        assert response.status_code == 404, family
    assert await _rows(rest_server) == before


async def test_unknown_paths_answer_in_their_familys_body(anon: Rest) -> None:
    expected = {
        "/fields/x/nothing-here": {"error": "Not found"},
        "/chat/nothing-here": {"error": "Not found"},
        "/api/nothing-here": {
            "error": {"code": "not_found", "message": "Not found", "details": {}}
        },
    }
    for path, body in expected.items():
        response = await anon.get(path)
        assert (response.status_code, response.json()) == (404, body), path
    kit = await anon.get("/v1/nothing-here")
    assert kit.status_code == 404
    assert (kit.json()["error"], kit.json()["message"]) == ("NOT_FOUND", "Not found")
    openai = await anon.post("/v1/chat/nothing-here", json={})
    assert openai.status_code == 404
    assert openai.json()["error"]["message"] == "Not found"
