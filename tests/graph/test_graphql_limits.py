"""One limits policy on both edges: GraphQL operations count in the same budgets and meet the
same quotas and sign-in throttle as the REST routes doing the same work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pyotp
from chat_helpers import CHAT, SEND, TransportWs
from conftest import RunningServer
from sqlalchemy import func, select

from domain.entities import Tier
from domain.rate_policy import LoginPolicy, RateLimitPolicy, TierQuota
from memoria.app import build_app
from memoria.settings import Settings
from persistence.tables.conversations import conversations
from providers.embedders.hashing import HashingEmbedder

SEARCH = 'query { searchMemories(query: "teal") { score } }'
CONVERSATION = "mutation($t: String!) { createConversation(input: {title: $t}) { id } }"
LOGIN = """mutation($u: String!, $p: String!, $c: String) {
  login(input: {usernameOrEmail: $u, password: $p, mfaCode: $c}) { accessToken } }"""
REGISTER = """mutation($i: RegisterInput!) { register(input: $i) { accessToken } }"""
PASSWORD = "correct-horse-1"


class Api:
    """GraphQL and REST over one kept-alive HTTP client (a new client per call costs more
    than the call)."""

    def __init__(self, server: RunningServer, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def post(self, query: str, variables: Any = None, token: str | None = None) -> Any:
        payload = {"query": query, "variables": variables or {}}
        response = await self.http.post("/graphql", json=payload, headers=self._headers(token))
        return response.json()

    async def data(self, query: str, variables: Any = None, token: str | None = None) -> Any:
        body = await self.post(query, variables, token)
        assert not body.get("errors"), body
        return body["data"]

    async def error(
        self, query: str, variables: Any = None, token: str | None = None
    ) -> dict[str, Any]:
        """The first error: its message and extensions."""
        body = await self.post(query, variables, token)
        assert body.get("errors"), body
        error: dict[str, Any] = body["errors"][0]
        return error

    async def register(self, username: str) -> str:
        variables = {
            "i": {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        }
        data = await self.data(REGISTER, variables)
        return str(data["register"]["accessToken"])

    async def rest(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(method, path, headers=self._headers(token), **kwargs)


@asynccontextmanager
async def serving(settings: Settings, **policy: Any) -> AsyncIterator[Api]:
    """A server selling plans: new users are free tier; large budgets unless a test sets
    them; an hour's window, so a window rolling over mid-test is rare."""
    base = RateLimitPolicy(
        window_seconds=3600,
        default_tier=Tier.FREE,
        tier_limits={tier: 1000 for tier in Tier},
        class_limits={"chat": 1000, "memory_search": 1000, "sync": 1000},
        anonymous_limit=1000,
    )
    tuned = settings.with_(rate_limits=replace(base, **policy))
    running = await RunningServer(build_app(tuned, embedder=HashingEmbedder())).start()
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            yield Api(running, http)
    finally:
        await running.stop()


def code(error: dict[str, Any]) -> str:
    return str(error["extensions"]["code"])


async def test_free_tier_searches_share_one_budget_with_rest(settings: Settings) -> None:
    async with serving(settings, class_limits={"chat": 1000, "memory_search": 3}) as api:
        alice = await api.register("alice")
        assert (await api.data("{ me { tier } }", token=alice))["me"]["tier"] == "free"
        await api.data(SEARCH, token=alice)
        await api.data(SEARCH, token=alice)
        by_rest = await api.rest("GET", "/api/memory/search", alice, params={"q": "x"})
        assert by_rest.status_code == 200
        assert by_rest.headers["X-RateLimit-Remaining"] == "0"  # two GraphQL searches counted
        refused = await api.error(SEARCH, token=alice)
        assert code(refused) == "RATE_LIMITED"
        assert 1 <= refused["extensions"]["retryAfter"] <= 3600
        again = await api.rest("GET", "/api/memory/search", alice, params={"q": "x"})
        assert again.status_code == 429
        # Each alias is a root field of its own: four searches in one operation pass a
        # budget of three, and none of them runs.
        bob = await api.register("bob")
        aliased = " ".join(f'a{i}: searchMemories(query: "x") {{ score }}' for i in range(4))
        body = await api.post("query { " + aliased + " }", token=bob)
        assert body["data"] is None
        assert code(body["errors"][0]) == "RATE_LIMITED"
        # Other fields count in the tier bucket, not the search class.
        assert (await api.data("{ me { username } }", token=bob))["me"]["username"] == "bob"


async def test_chat_turns_count_in_the_chat_class_on_every_surface(settings: Settings) -> None:
    async with serving(settings, class_limits={"chat": 3, "memory_search": 1000}) as api:
        alice = await api.register("alice")
        sent = await api.data(SEND, {"i": {"message": "hello"}}, token=alice)
        assert sent["sendMessage"]["message"]["role"].lower() == "assistant"
        ws = await TransportWs.open(api.server, {"Authorization": f"Bearer {alice}"})
        try:
            await ws.subscribe(CHAT, {"i": {"message": "hi"}}, op_id="1")
            kinds = []
            while payload := await ws.next():
                assert not payload.get("errors"), payload
                kinds.append(payload["data"]["chat"]["__typename"])
            assert kinds[-1] == "ChatCompleted"
            by_rest = await api.rest("POST", "/api/chat", alice, json={"message": "x"})
            assert by_rest.status_code == 200, by_rest.text
            # Three turns taken: a fourth subscription is refused before it starts.
            await ws.subscribe(CHAT, {"i": {"message": "once more"}}, op_id="2")
            payload = await ws.next()
            assert code(payload["errors"][0]) == "RATE_LIMITED"
            assert payload["errors"][0]["extensions"]["retryAfter"] >= 1
        finally:
            await ws.close()
        refused = await api.error(SEND, {"i": {"message": "and again"}}, token=alice)
        assert code(refused) == "RATE_LIMITED"
        turn = await api.rest("POST", "/api/chat", alice, json={"message": "x"})
        assert turn.status_code == 429


async def test_conversation_quota_refuses_graphql_like_rest(settings: Settings) -> None:
    quotas = {Tier.FREE: TierQuota(conversations=2, messages=100, storage_bytes=1 << 20)}
    async with serving(settings, quotas=quotas) as api:
        alice = await api.register("alice")
        for title in ("one", "two"):
            await api.data(CONVERSATION, {"t": title}, token=alice)
        refused = await api.error(CONVERSATION, {"t": "three"}, token=alice)
        assert code(refused) == "FORBIDDEN"
        assert refused["extensions"]["details"]["quota"] == "conversations"
        # A chat turn starting a conversation meets the same quota.
        turn = await api.error(SEND, {"i": {"message": "new topic"}}, token=alice)
        assert turn["extensions"]["details"]["quota"] == "conversations"
        by_rest = await api.rest("POST", "/v1/conversations", alice, json={"title": "x"})
        assert by_rest.status_code == 403
        assert by_rest.json()["details"]["quota"] == "conversations"
        async with api.server.runtime.db.engine.connect() as conn:
            total = select(func.count()).select_from(conversations)
            assert (await conn.execute(total)).scalar_one() == 2


async def test_failed_logins_lock_the_account_on_both_surfaces(settings: Settings) -> None:
    login = LoginPolicy(max_failures_per_account=3, max_failures_per_address=100)
    async with serving(settings, login=login) as api:
        await api.register("alice")
        await api.register("bob")
        for _ in range(3):
            wrong = await api.error(LOGIN, {"u": "alice", "p": "not-the-password"})
            assert code(wrong) == "UNAUTHENTICATED"
        # Locked, whichever name is typed: the right password is refused too, and the
        # error says so.
        locked = await api.error(LOGIN, {"u": "alice@example.com", "p": PASSWORD})
        assert code(locked) == "RATE_LIMITED"
        assert 1 <= locked["extensions"]["retryAfter"] <= 900
        assert "correct password" in locked["message"]
        by_rest = await api.rest(
            "POST", "/api/auth/login", json={"username_or_email": "alice", "password": PASSWORD}
        )
        assert by_rest.status_code == 429
        assert int(by_rest.headers["Retry-After"]) >= 1
        # Another account from the same address is not affected.
        assert (await api.data(LOGIN, {"u": "bob", "p": PASSWORD}))["login"]["accessToken"]


async def test_failed_logins_lock_the_client_address(settings: Settings) -> None:
    login = LoginPolicy(max_failures_per_account=100, max_failures_per_address=3)
    async with serving(settings, login=login) as api:
        await api.register("alice")
        await api.register("bob")
        for _ in range(3):
            wrong = await api.error(LOGIN, {"u": "alice", "p": "guess-guess"})
            assert code(wrong) == "UNAUTHENTICATED"
        locked = await api.error(LOGIN, {"u": "bob", "p": PASSWORD})
        assert code(locked) == "RATE_LIMITED"
        assert locked["extensions"]["details"]["scope"] == "address"
        refused = await api.rest(
            "POST", "/api/auth/login", json={"username_or_email": "bob", "password": PASSWORD}
        )
        assert refused.status_code == 429


async def test_wrong_totp_codes_count_as_failed_sign_ins(settings: Settings) -> None:
    login = LoginPolicy(max_failures_per_account=2, max_failures_per_address=100)
    async with serving(settings, login=login) as api:
        alice = await api.register("alice")
        begun = await api.data("mutation { beginMfaEnrollment { secret } }", token=alice)
        secret = begun["beginMfaEnrollment"]["secret"]
        wrong = await api.error('mutation { confirmMfa(code: "000000") { id } }', token=alice)
        assert code(wrong) == "BAD_USER_INPUT"
        confirm = "mutation($c: String!) { confirmMfa(code: $c) { id } }"
        await api.data(confirm, {"c": pyotp.TOTP(secret).now()}, token=alice)
        bad_code = await api.error(LOGIN, {"u": "alice", "p": PASSWORD, "c": "123456"})
        assert code(bad_code) == "UNAUTHENTICATED"
        # Two failures (a confirmMfa code, a sign-in code): locked, even with the right
        # password and a fresh code, and for disableMfa on the signed-in session.
        fresh = pyotp.TOTP(secret).now()
        locked = await api.error(LOGIN, {"u": "alice", "p": PASSWORD, "c": fresh})
        assert code(locked) == "RATE_LIMITED"
        disable = "mutation($c: String!) { disableMfa(code: $c) { id } }"
        assert code(await api.error(disable, {"c": fresh}, token=alice)) == "RATE_LIMITED"


async def test_new_users_get_the_default_tier_and_no_request_budget(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = Api(server, http)
        alice = await api.register("alice")
        assert (await api.data("{ me { tier } }", token=alice))["me"]["tier"] == "unlimited"
        for i in range(11):  # the documents' free tier allows 10 a minute
            added = await api.rest("POST", "/api/memory", alice, json={"content": f"note {i}"})
            assert added.status_code == 201, added.text
            models = await api.rest("GET", "/v1/models", alice)
            assert models.status_code == 200, models.text
        for i in range(6):  # past the free tier's five conversations
            await api.data(CONVERSATION, {"t": f"topic {i}"}, token=alice)


async def test_admins_are_never_rate_limited(settings: Settings) -> None:
    tiny = {tier: 1 for tier in Tier}
    classes = {"chat": 1, "memory_search": 1, "sync": 1}
    async with serving(settings, tier_limits=tiny, class_limits=classes) as api:
        signed_in = await api.data(LOGIN, {"u": "admin", "p": "admin-password-123"})
        admin = signed_in["login"]["accessToken"]
        for _ in range(4):
            await api.data(SEARCH, token=admin)
            await api.data("{ me { role } again: me { id } }", token=admin)
            assert (await api.rest("GET", "/api/memory/stats", admin)).status_code == 200
        await api.data(SEND, {"i": {"message": "hello"}}, token=admin)
        await api.data(SEND, {"i": {"message": "hello again"}}, token=admin)
        # An ordinary user of the same server is throttled at once.
        alice = await api.register("alice")
        await api.data("{ me { id } }", token=alice)
        assert code(await api.error("{ me { id } }", token=alice)) == "RATE_LIMITED"
