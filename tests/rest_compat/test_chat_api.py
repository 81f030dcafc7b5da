"""Chat API (chat-api.txt): conversations, messages and attachments with ``user_id`` checked
against the caller, opaque ``file_path`` and multipart uploads stored as blobs."""

from __future__ import annotations

import hashlib

from conftest import RunningServer
from rest_helpers import Account, Rest, admin_token
from sqlalchemy import select

from persistence.tables.conversations import blobs


async def _conversation_and_message(api: Rest, user_id: str) -> tuple[str, str]:
    conv = await api.post("/chat/conversations", json={"user_id": user_id, "title": "Support"})
    assert conv.status_code == 201, conv.text
    message = await api.post(
        "/chat/messages",
        json={"conversation_id": conv.json()["id"], "role": "user", "content": "See attached"},
    )
    assert message.status_code == 201, message.text
    return conv.json()["id"], message.json()["id"]


async def test_conversations_and_messages(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    conv_id, message_id = await _conversation_and_message(api, alice.user_id)
    conv = (await api.get(f"/chat/conversations/{conv_id}")).json()
    assert conv["user_id"] == alice.user_id
    assert conv["title"] == "Support"
    messages = (await api.get(f"/chat/conversations/{conv_id}/messages")).json()
    assert [m["id"] for m in messages] == [message_id]
    assert set(messages[0]) >= {"id", "conversation_id", "role", "content", "created_at"}

    missing = await api.get("/chat/conversations/unknown")
    assert (missing.status_code, missing.json()) == (404, {"error": "Conversation not found"})
    missing_msgs = await api.get("/chat/conversations/unknown/messages")
    assert (missing_msgs.status_code, missing_msgs.json()) == (
        404,
        {"error": "Conversation not found"},
    )
    bad_message = await api.post(
        "/chat/messages", json={"conversation_id": "unknown", "role": "user", "content": "x"}
    )
    assert (bad_message.status_code, bad_message.json()) == (
        404,
        {"error": "Conversation not found"},
    )
    invalid = await api.post("/chat/messages", json={"conversation_id": conv_id, "role": "user"})
    assert (invalid.status_code, invalid.json()) == (400, {"error": "content is required"})


async def test_user_id_must_be_the_caller_unless_admin(
    rest_server: RunningServer, anon: Rest, alice: Account, bob: Account
) -> None:
    forbidden = await anon.as_(alice.jwt).post(
        "/chat/conversations", json={"user_id": bob.user_id, "title": "spoof"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json() == {"error": "user_id must be the authenticated user's id"}
    admin = anon.as_(await admin_token(rest_server.url))
    on_behalf = await admin.post(
        "/chat/conversations", json={"user_id": bob.user_id, "title": "for bob"}
    )
    assert on_behalf.status_code == 201
    assert on_behalf.json()["user_id"] == bob.user_id
    seen_by_bob = await anon.as_(bob.jwt).get(f"/chat/conversations/{on_behalf.json()['id']}")
    assert seen_by_bob.status_code == 200
    ghost = await admin.post("/chat/conversations", json={"user_id": "no-such-user", "title": "x"})
    assert (ghost.status_code, ghost.json()) == (404, {"error": "User not found"})


async def test_attachment_by_reference_is_never_opened(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    _conv, message_id = await _conversation_and_message(api, alice.user_id)
    created = await api.post(
        "/chat/attachments",
        json={"message_id": message_id, "file_type": "text/plain", "file_path": "/etc/shadow"},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["file_path"] == "/etc/shadow"  # stored verbatim, an opaque reference
    assert body["size"] == 0
    assert body["sha256"] is None
    listed = (await api.get(f"/chat/messages/{message_id}/attachments")).json()
    assert [a["id"] for a in listed] == [body["id"]]

    unknown = await api.post(
        "/chat/attachments", json={"message_id": "nope", "file_type": "t", "file_path": "p"}
    )
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Message not found"})
    no_path = await api.post("/chat/attachments", json={"message_id": message_id, "file_type": "t"})
    assert (no_path.status_code, no_path.json()) == (400, {"error": "file_path is required"})
    none = await api.get("/chat/messages/nope/attachments")
    assert (none.status_code, none.json()) == (404, {"error": "Message not found"})


async def test_multipart_upload_stores_bytes(
    rest_server: RunningServer, anon: Rest, alice: Account, bob: Account
) -> None:
    api = anon.as_(alice.jwt)
    _conv, message_id = await _conversation_and_message(api, alice.user_id)
    data = b"%PDF-1.4 pretend pdf\n" * 100
    uploaded = await api.post(
        "/chat/attachments",
        data={"message_id": message_id, "file_type": "application/pdf"},
        files={"file": ("report.pdf", data, "application/pdf")},
    )
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["file_path"] == "report.pdf"
    async with rest_server.runtime.db.engine.connect() as conn:
        stored = (
            await conn.execute(select(blobs.c.data).where(blobs.c.user_id == alice.user_id))
        ).scalar_one()
    assert bytes(stored) == data

    # Bob cannot attach to Alice's message: it does not exist for him.
    foreign = await anon.as_(bob.jwt).post(
        "/chat/attachments",
        data={"message_id": message_id, "file_type": "text/plain"},
        files={"file": ("x.txt", b"x", "text/plain")},
    )
    assert (foreign.status_code, foreign.json()) == (404, {"error": "Message not found"})


async def test_llm_providers_and_user_configs(
    rest_server: RunningServer, anon: Rest, alice: Account, bob: Account
) -> None:
    admin = anon.as_(await admin_token(rest_server.url))
    forbidden = await anon.as_(alice.jwt).post(
        "/chat/llm-providers", json={"name": "p", "api_endpoint": "http://127.0.0.1:9/v1"}
    )
    assert forbidden.status_code == 403
    created = await admin.post(
        "/chat/llm-providers", json={"name": "local-vllm", "api_endpoint": "http://127.0.0.1:9/v1"}
    )
    assert created.status_code == 201, created.text
    provider = created.json()
    assert provider["name"] == "local-vllm"
    assert provider["api_endpoint"] == "http://127.0.0.1:9/v1"
    fetched = await anon.as_(alice.jwt).get(f"/chat/llm-providers/{provider['id']}")
    assert fetched.json()["id"] == provider["id"]
    missing = await admin.get("/chat/llm-providers/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "LLM provider not found"})
    no_name = await admin.post("/chat/llm-providers", json={"api_endpoint": "http://x"})
    assert no_name.status_code == 400

    api = anon.as_(alice.jwt)
    secret = "sk-test-1234567890abcd"
    saved = await api.post(
        "/chat/user-llm-configs",
        json={"user_id": alice.user_id, "provider_id": provider["id"], "api_key": secret},
    )
    assert saved.status_code == 201, saved.text
    assert secret not in saved.text
    assert saved.json()["api_key"] == "sk-…abcd"  # the documented mask
    got = await api.get(f"/chat/user-llm-configs/{alice.user_id}/{provider['id']}")
    assert got.status_code == 200
    assert secret not in got.text
    assert got.json()["api_key"] == "sk-…abcd"
    spoof = await api.post(
        "/chat/user-llm-configs",
        json={"user_id": bob.user_id, "provider_id": provider["id"], "api_key": secret},
    )
    assert spoof.status_code == 403
    unknown = await api.post(
        "/chat/user-llm-configs",
        json={"user_id": alice.user_id, "provider_id": "nope", "api_key": secret},
    )
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "User or LLM provider not found"},
    )
    none = await anon.as_(bob.jwt).get(f"/chat/user-llm-configs/{bob.user_id}/{provider['id']}")
    assert (none.status_code, none.json()) == (404, {"error": "User LLM config not found"})
    peek = await anon.as_(bob.jwt).get(f"/chat/user-llm-configs/{alice.user_id}/{provider['id']}")
    assert peek.status_code == 403
