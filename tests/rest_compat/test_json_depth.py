"""JSON nested past ``MAX_JSON_DEPTH`` is a 400 in each route's own dialect (it used to be a
RecursionError and a 500 on every route, the open login included); nesting up to the limit
is ordinary input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from rest_helpers import Account, Rest

from domain.json_depth import MAX_JSON_DEPTH

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # Body parsing happens before any storage: SQLite only keeps these tests fast.
    return f"sqlite+aiosqlite:///{tmp_path / 'memoria.db'}"


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _message(body: dict[str, Any]) -> str:
    """The message of any dialect's error body: {"error": {"message"}} (senua),
    {"error": CODE, "message"} (memorykit) or {"error": message} (the others)."""
    error = body["error"]
    if isinstance(error, dict):
        return str(error["message"])
    return str(body.get("message", error))


async def test_the_open_login_refuses_deep_json_with_a_400(
    rest_server: RunningServer, anon: Rest
) -> None:
    for body in (
        _deep(5000),
        b'{"username_or_email": "admin", "password": ' + _deep(100_000) + b"}",
    ):
        response = await anon.post("/api/auth/login", content=body, headers=JSON)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["message"] == f"JSON body nested deeper than {MAX_JSON_DEPTH} levels"
        assert error["details"] == {"max_depth": MAX_JSON_DEPTH}
    # Brackets inside strings are text, not nesting.
    text = '{"username_or_email": "admin", "password": "' + "[" * 5000 + '"}'
    wrong = await anon.post("/api/auth/login", content=text.encode(), headers=JSON)
    assert wrong.status_code == 401, wrong.text


# (path, body with the deep value in place of DEEP) per family.
ROUTES = {
    "sentech": ("/fields/{field}/memories", b'{"content": "hi", "metadata": {"x": DEEP}}'),
    "senua": ("/api/memory", b'{"content": "hi", "metadata": {"x": DEEP}}'),
    "memorykit": ("/v1/conversations", b'{"title": DEEP}'),
    "chat_api": ("/chat/conversations", b'{"title": DEEP}'),
}


async def test_every_family_answers_deep_json_in_its_dialect(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    field = (await api.post("/fields/create-memory-field", json={"name": "f"})).json()["field_id"]
    for family, (path, template) in ROUTES.items():
        body = template.replace(b"DEEP", _deep(5000))
        response = await api.post(path.format(field=field), content=body, headers=JSON)
        assert response.status_code == 400, (family, response.text)
        assert "nested deeper than" in _message(response.json()), (family, response.json())


async def test_nesting_up_to_the_limit_is_accepted(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    # The body itself is one level: metadata {"x": ...} two more.
    fits = {"content": "hi", "metadata": {"x": _nested(MAX_JSON_DEPTH - 2)}}
    created = await api.post("/api/memory", json=fits)
    assert created.status_code in (200, 201), created.text
    too_deep = {"content": "hi", "metadata": {"x": _nested(MAX_JSON_DEPTH - 1)}}
    refused = await api.post("/api/memory", json=too_deep)
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {"max_depth": MAX_JSON_DEPTH}
