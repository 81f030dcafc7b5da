"""Registration, login, JWT and API-key authentication over GraphQL."""

from __future__ import annotations

import time

import jwt
from conftest import GraphQLClient, RunningServer
from sqlalchemy import select

from persistence.tables.accounts import api_keys, users

ME = "{ me { id username email role tier } }"
LOGIN = """mutation($u: String!, $p: String!) {
  login(input: {usernameOrEmail: $u, password: $p}) { accessToken expiresIn user { username } }
}"""


async def test_register_login_me(gql: GraphQLClient) -> None:
    alice = await gql.register("alice", "correct-horse-1")
    me = (await alice.data(ME))["me"]
    assert me["username"] == "alice"
    assert me["role"] == "user"
    login = (await gql.data(LOGIN, {"u": "alice@example.com", "p": "correct-horse-1"}))["login"]
    assert login["expiresIn"] == 86400
    assert login["user"]["username"] == "alice"
    again = gql.as_(login["accessToken"])
    assert (await again.data(ME))["me"]["id"] == me["id"]


async def test_wrong_password_and_missing_token(gql: GraphQLClient) -> None:
    await gql.register("alice", "correct-horse-1")
    wrong = await gql.error(LOGIN, {"u": "alice", "p": "wrong-password"})
    assert wrong.code == "UNAUTHENTICATED"
    unknown = await gql.error(LOGIN, {"u": "nobody", "p": "wrong-password"})
    assert unknown.code == "UNAUTHENTICATED"
    assert unknown.errors[0]["message"] == wrong.errors[0]["message"]
    anonymous = await gql.error(ME)
    assert anonymous.code == "UNAUTHENTICATED"
    garbage = await gql.as_("not-a-token").error(ME)
    assert garbage.code == "UNAUTHENTICATED"


async def test_expired_and_forged_jwt_are_refused(
    gql: GraphQLClient, server: RunningServer
) -> None:
    alice = await gql.register("alice")
    user_id = (await alice.data(ME))["me"]["id"]
    secret = server.runtime.secrets.jwt_secret
    now = int(time.time())
    expired = jwt.encode({"sub": user_id, "iat": now - 90_000, "exp": now - 10}, secret, "HS256")
    error = await gql.as_(expired).error(ME)
    assert error.code == "UNAUTHENTICATED"
    assert "expired" in error.errors[0]["message"]
    forged = jwt.encode({"sub": user_id, "exp": now + 60}, "x" * 48, "HS256")
    assert (await gql.as_(forged).error(ME)).code == "UNAUTHENTICATED"


async def test_api_key_lifecycle(gql: GraphQLClient, server: RunningServer) -> None:
    alice = await gql.register("alice")
    created = (
        await alice.data('mutation { createApiKey(name: "ci") { key apiKey { id name prefix } } }')
    )["createApiKey"]
    secret = created["key"]
    assert secret.startswith(created["apiKey"]["prefix"])
    with_key = gql.as_(secret)
    assert (await with_key.data(ME))["me"]["username"] == "alice"
    listed = (await alice.data("{ apiKeys { name revoked lastUsedAt } }"))["apiKeys"]
    assert [(k["name"], k["revoked"]) for k in listed] == [("ci", False)]
    assert listed[0]["lastUsedAt"] is not None  # the request above used it

    revoked = await alice.data(
        "mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": created["apiKey"]["id"]}
    )
    assert revoked == {"revokeApiKey": True}
    refused = await with_key.error(ME)
    assert refused.code == "UNAUTHENTICATED"


async def test_secrets_are_stored_hashed(gql: GraphQLClient, server: RunningServer) -> None:
    alice = await gql.register("alice", "correct-horse-1")
    secret = (await alice.data('mutation { createApiKey(name: "k") { key } }'))["createApiKey"][
        "key"
    ]
    async with server.runtime.db.engine.connect() as conn:
        stored_hash = (
            await conn.execute(select(users.c.password_hash).where(users.c.username == "alice"))
        ).scalar_one()
        key_rows = list(await conn.execute(select(api_keys)))
    assert stored_hash.startswith("$argon2")
    assert "correct-horse-1" not in stored_hash
    assert all(secret not in str(tuple(row)) for row in key_rows)


async def test_admin_exists_after_first_start(gql: GraphQLClient) -> None:
    admin = await gql.data(LOGIN, {"u": "admin", "p": "admin-password-123"})
    token = admin["login"]["accessToken"]
    assert (await gql.as_(token).data(ME))["me"]["role"] == "admin"


async def test_duplicate_registration_is_refused(gql: GraphQLClient) -> None:
    await gql.register("alice")
    error = await gql.error(
        """mutation { register(input: {username: "alice", email: "other@example.com",
             password: "correct-horse-1"}) { accessToken } }"""
    )
    assert error.code == "BAD_USER_INPUT"


async def test_sign_in_ignores_the_case_of_the_username(
    gql: GraphQLClient, server: RunningServer
) -> None:
    alice = await gql.register("Alice", "correct-horse-1")
    alice_id = (await alice.data(ME))["me"]["id"]
    for typed in ("alice", "ALICE", " Alice "):
        login = (await gql.data(LOGIN, {"u": typed, "p": "correct-horse-1"}))["login"]
        assert login["user"]["username"] == "Alice"
        assert (await gql.as_(login["accessToken"]).data(ME))["me"]["id"] == alice_id
    # Two accounts that differ only in case (made before registration refused that) are
    # each reached by their exact name.
    await gql.register("bob", "correct-horse-2")
    carol = await gql.register("carol", "correct-horse-3")
    carol_id = (await carol.data(ME))["me"]["id"]
    async with server.runtime.db.engine.begin() as conn:
        await conn.execute(users.update().where(users.c.id == carol_id).values(username="Bob"))
    named = (await gql.data(LOGIN, {"u": "Bob", "p": "correct-horse-3"}))["login"]
    assert named["user"]["username"] == "Bob"
    exact = (await gql.data(LOGIN, {"u": "bob", "p": "correct-horse-2"}))["login"]
    assert exact["user"]["username"] == "bob"
