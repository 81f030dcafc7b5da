"""`memoria serve` as a real subprocess on its own port, and the environment the processes
of one PostgreSQL deployment share (tests/memoria/test_multi_process*.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from conftest import PgServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One `memoria serve` process (with its workers), on its own port."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.http = httpx.AsyncClient(timeout=30)  # used by one asyncio.run only
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memoria.cli", "serve", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.stop()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("server did not start in 60 s")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return out

    async def gql(self, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        return response.json()


def deployment_env(
    pg_server: PgServer, data_dir: Path, database: str, **settings: str
) -> dict[str, str]:
    """What every process of one deployment is given (machines of one deployment share
    their secrets through the environment), plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIA_", "DATABASE_"))}
    env.update(
        MEMORIA_DATA_DIR=str(data_dir),
        DATABASE_URL=pg_server.url(database),
        MEMORIA_EMBEDDER="hashing",
        MEMORIA_ENV="test",
        MEMORIA_JWT_SECRET="a-shared-jwt-secret-for-the-test-deployment",
        MEMORIA_ENCRYPTION_KEY="8Q2PZ1zJ3lQX0l0W7cQn0Y9n6mZ2v4x5bK1c3d4e5fA=",
        MEMORIA_ADMIN_PASSWORD="admin-password-123",
        **settings,
    )
    return env
