"""`memoria serve` end to end: first run, the register → search flow over HTTP with the
default offline embedder, and data surviving a restart — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

FACTS = [
    "I adopted a grey cat called Miso last spring",
    "My flight to Tokyo leaves on the 14th of October",
    "I'm vegetarian, but I eat fish occasionally",
    "The wifi password at the cabin is on the fridge",
    "My manager Priya prefers weekly written status updates",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Served:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memoria.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("server did not start in 60 s")

    def stop(self) -> str:
        assert self.proc is not None
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        self.output += out
        return out

    def gql(self, query: str, variables: dict[str, object], token: str | None = None) -> dict:  # type: ignore[type-arg]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=60,
        ).json()
        assert not body.get("errors"), body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(params=["sqlite", "postgres"])
def serve_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIA_", "DATABASE_"))}
    env["MEMORIA_DATA_DIR"] = str(tmp_path / "data")
    if request.param == "postgres":
        pg = request.getfixturevalue("pg_server")
        env["DATABASE_URL"] = pg.url(pg.create_database())
    return env


def test_first_run_flow_and_restart(serve_env: dict[str, str]) -> None:
    server = Served(serve_env).start()
    try:
        token = server.gql(
            'mutation { register(input: {username: "dana", email: "dana@example.com", '
            'password: "a-long-password"}) { accessToken } }',
            {},
        )["register"]["accessToken"]
        token = server.gql(
            'mutation { login(input: {usernameOrEmail: "dana", password: "a-long-password"}) '
            "{ accessToken } }",
            {},
        )["login"]["accessToken"]
        field = server.gql(
            'mutation { createMemoryField(name: "life") { id dimension embedder } }', {}, token
        )["createMemoryField"]
        assert field["dimension"] == 384
        assert "MiniLM" in field["embedder"]
        server.gql(
            "mutation($f: ID!, $i: [MemoryInput!]!) { addMemories(fieldId: $f, inputs: $i) { id } }",
            {"f": field["id"], "i": [{"content": c} for c in FACTS]},
            token,
        )
        search = (
            "query($f: ID!, $q: String!) { searchMemories(fieldId: $f, query: $q, topK: 3) "
            "{ score memory { content } } }"
        )
        hits = server.gql(search, {"f": field["id"], "q": "What is the name of my pet?"}, token)
        assert hits["searchMemories"][0]["memory"]["content"] == FACTS[0]
        hits = server.gql(search, {"f": field["id"], "q": "When do I travel to Japan?"}, token)
        assert hits["searchMemories"][0]["memory"]["content"] == FACTS[1]
    finally:
        first_output = server.stop()
    assert "/graphql" in first_output
    assert "Created admin user 'admin' with password:" in first_output
    data_dir = Path(serve_env["MEMORIA_DATA_DIR"])
    assert (data_dir / "jwt_secret").stat().st_mode & 0o077 == 0
    assert (data_dir / "encryption.key").exists()
    if "DATABASE_URL" not in serve_env:
        # The database and its write-ahead log hold every user's memories: owner only.
        files = list(data_dir.glob("memoria.db*"))
        assert data_dir / "memoria.db" in files
        assert all(f.stat().st_mode & 0o077 == 0 for f in files), files

    again = Served(serve_env).start()
    try:
        # The old token still works: the JWT secret persisted; the index is rebuilt from the DB.
        hits = again.gql(search, {"f": field["id"], "q": "dietary restrictions, food"}, token)
        assert hits["searchMemories"][0]["memory"]["content"] == FACTS[2]
    finally:
        second_output = again.stop()
    assert "Created admin user" not in second_output
