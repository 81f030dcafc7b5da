"""Several `memoria serve` processes on one PostgreSQL database: a `messageAdded`
subscription held by one process sees messages stored through another (LISTEN/NOTIFY), and
`--workers N` runs N processes on one port, each taking its share of the connections;
request budgets and sign-in locks are shared; embedded (SQLite) mode refuses `--workers`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from conftest import PgServer
from server_processes import Server, deployment_env
from websockets.asyncio.client import connect

MESSAGE_ADDED = "subscription($c: ID!) { messageAdded(conversationId: $c) { id role content } }"
ADD_MESSAGE = """mutation($c: ID!, $t: String!) {
  addMessage(conversationId: $c, input: {role: "user", content: $t}) { id } }"""
REGISTER = """mutation { register(input: {username: "dana", email: "dana@example.com",
  password: "a-long-password"}) { accessToken } }"""
CONVERSATION = 'mutation { createConversation(input: {title: "shared"}) { id } }'
SEARCH = 'query { searchMemories(query: "where do I live") { score } }'
LOGIN = """mutation($p: String!) {
  login(input: {usernameOrEmail: "dana", password: $p}) { accessToken } }"""


def _env(pg_server: PgServer, data_dir: Path, database: str) -> dict[str, str]:
    return deployment_env(
        pg_server,
        data_dir,
        database,
        MEMORIA_BACKGROUND_WORKERS="off",
        MEMORIA_LOGIN_MAX_FAILURES="3",
        MEMORIA_LOGIN_MAX_FAILURES_PER_ADDRESS="1000",  # the account's lock is under test
        MEMORIA_RATE_LIMIT_MEMORY_SEARCH="7",  # a budget the test can spend quickly
    )


async def _delivered_across(
    a: Server, b: Server, token: str, conversation: str
) -> list[tuple[float, float]]:
    """Per message, seconds from sending ``addMessage`` to B until B answered (the message
    is stored) and until A's subscriber has it."""
    ws_url = a.url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket_:  # type: ignore[list-item]
        await socket_.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await socket_.recv())["type"] == "connection_ack"
        subscribe = {"query": MESSAGE_ADDED, "variables": {"c": conversation}}
        await socket_.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))

        async def received() -> dict[str, Any]:
            message = json.loads(await asyncio.wait_for(socket_.recv(), 10))
            assert message["type"] == "next", message
            added: dict[str, Any] = message["payload"]["data"]["messageAdded"]
            return added

        # The subscription is live once a first message stored through B arrives.
        for _ in range(50):
            first = await b.gql(ADD_MESSAGE, {"c": conversation, "t": "warm-up"}, token)
            try:
                warm = json.loads(await asyncio.wait_for(socket_.recv(), 0.2))
            except TimeoutError:
                continue
            assert (
                warm["payload"]["data"]["messageAdded"]["id"] == first["data"]["addMessage"]["id"]
            )
            break
        else:
            raise AssertionError("messageAdded on A never saw a message stored through B")
        while True:  # warm-up messages that arrived late
            try:
                await asyncio.wait_for(socket_.recv(), 0.3)
            except TimeoutError:
                break

        latencies = []
        for n in range(20):
            started = time.perf_counter()
            waiting = asyncio.ensure_future(received())
            stored = await b.gql(ADD_MESSAGE, {"c": conversation, "t": f"note {n}"}, token)
            answered = time.perf_counter() - started
            added = await waiting
            latencies.append((answered, time.perf_counter() - started))
            assert added == {
                "id": stored["data"]["addMessage"]["id"],
                "role": "user",
                "content": f"note {n}",
            }
        return latencies


async def _locked_out_across(a: Server, b: Server) -> None:
    """Three failed sign-ins, two through A and one through B, lock the account in A too."""
    for server in (a, a, b):
        refused = await server.gql(LOGIN, {"p": "a-wrong-password"})
        assert "invalid username or password" in refused["errors"][0]["message"], refused
    await asyncio.sleep(0.3)  # B's count reaches A through NOTIFY, in milliseconds
    for server in (a, b):
        locked = await server.gql(LOGIN, {"p": "a-long-password"})  # the right password
        assert (
            "Too many failed sign-in attempts for this account" in (locked["errors"][0]["message"])
        ), locked


async def _budget_spent_across(a: Server, b: Server, token: str) -> None:
    """Seven searches per window, spread over A and B: the eighth is refused on both."""
    for n in range(7):
        answered = await (a, b)[n % 2].gql(SEARCH, {}, token)
        assert "errors" not in answered, answered
    for server in (a, b):
        refused = await server.gql(SEARCH, {}, token)
        assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED", refused
        assert refused["errors"][0]["extensions"]["retryAfter"] >= 1


def test_processes_share_events_budgets_and_sign_in_locks(
    pg_server: PgServer, tmp_path: Path
) -> None:
    database = pg_server.create_database()
    # A runs two workers; all three processes migrate and bootstrap the same fresh database.
    a = Server(_env(pg_server, tmp_path / "a", database), "--workers", "2")
    b = Server(_env(pg_server, tmp_path / "b", database))
    try:
        a.wait_healthy()
        b.wait_healthy()

        async def scenario() -> list[tuple[float, float]]:
            token = (await b.gql(REGISTER, {}))["data"]["register"]["accessToken"]
            conversation = (await a.gql(CONVERSATION, {}, token))["data"]["createConversation"]
            try:
                latencies = await _delivered_across(a, b, token, conversation["id"])
                await _budget_spent_across(a, b, token)
                await _locked_out_across(a, b)
                return latencies
            finally:
                await a.http.aclose()
                await b.http.aclose()

        latencies = asyncio.run(scenario())
    finally:
        out_a, out_b = a.stop(), b.stop()
    assert "Workers:                  2 processes" in out_a
    assert "Traceback" not in out_a + out_b  # no process lost a first-start race
    stored = sorted(x * 1000 for x, _ in latencies)
    delivered = sorted(y * 1000 for _, y in latencies)
    after = sorted((y - x) * 1000 for x, y in latencies)
    print(
        f"\ncross-process messageAdded, {len(latencies)} messages (median / max): "
        f"addMessage on B answered {statistics.median(stored):.1f} / {stored[-1]:.1f} ms, "
        f"delivered on A's socket {statistics.median(delivered):.1f} / {delivered[-1]:.1f} ms "
        f"after sending, {statistics.median(after):.1f} / {after[-1]:.1f} ms after B answered"
    )


def test_embedded_mode_refuses_several_workers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIA_", "DATABASE_"))}
    env["MEMORIA_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "memoria.cli", "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "embedded mode is one process: use PostgreSQL (DATABASE_URL)" in done.stderr
    assert not (tmp_path / "data" / "memoria.db").exists()  # refused before anything started


def _children(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.update(int(c) for c in (task / "children").read_text().split())
    return children


def _connections_by_process(pids: set[int], port: int) -> dict[int, int]:
    """How many established TCP connections on ``port`` each of ``pids`` holds (Linux:
    the sockets in /proc/<pid>/fd, matched to /proc/net/tcp by inode)."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                established.add(cols[9])
    held: dict[int, int] = {}
    for pid in pids:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        held[pid] = len(inodes & established)
    return held


def _serving_workers(server: Server, clients: int) -> dict[int, int]:
    """Open ``clients`` keep-alive connections at once; how many each worker took."""

    async def connect_all() -> dict[int, int]:
        https = [httpx.AsyncClient(base_url=server.url, timeout=10) for _ in range(clients)]
        try:
            for _ in range(2):
                answers = await asyncio.gather(*(h.get("/health") for h in https))
                assert all(a.status_code == 200 for a in answers)
            return _connections_by_process(_children(server.proc.pid), server.port)
        finally:
            for h in https:
                await h.aclose()

    return {pid: n for pid, n in asyncio.run(connect_all()).items() if n}


def test_workers_share_the_connections_and_the_port_is_theirs(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """Keep-alive clients that connect at once reach both workers (uvicorn's shared socket
    gave them all to one in most tries); a worker that dies is replaced, SIGHUP replaces
    them all, SIGTTIN / SIGTTOU add and retire one, and they stop with their supervisor; a second server cannot start on the
    port."""
    server = Server(_env(pg_server, tmp_path / "a", pg_server.create_database()), "--workers", "2")
    try:
        server.wait_healthy()
        # 16 connections hashed over two sockets all land on one with probability 2 / 2^16;
        # on uvicorn's shared socket, in about one round of three.
        for _ in range(5):
            spread = _serving_workers(server, 16)
            assert len(spread) == 2, spread
            assert sum(spread.values()) == 16

        second = subprocess.run(
            [sys.executable, "-m", "memoria.cli", "serve", "--workers", "2"],
            env={**_env(pg_server, tmp_path / "b", "unused"), "MEMORIA_PORT": str(server.port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stderr
        assert f"cannot listen on 127.0.0.1:{server.port}" in second.stderr

        killed = next(iter(spread))
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            spread = _serving_workers(server, 16)
            if len(spread) == 2 and killed not in spread:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no worker replaced {killed}: {spread}")

        # SIGHUP replaces every worker, one at a time.
        serving = set(spread)
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            spread = _serving_workers(server, 16)
            if len(spread) == 2 and not serving & set(spread):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"SIGHUP did not replace the workers {serving}: {spread}")

        # SIGTTIN adds a worker, SIGTTOU retires one.
        os.kill(server.proc.pid, signal.SIGTTIN)
        deadline = time.monotonic() + 120
        while len(spread := _serving_workers(server, 24)) != 3:
            assert time.monotonic() < deadline, f"no third worker: {spread}"
            time.sleep(0.2)
        os.kill(server.proc.pid, signal.SIGTTOU)
        deadline = time.monotonic() + 60
        while len(spread := _serving_workers(server, 24)) != 2:
            assert time.monotonic() < deadline, f"still three workers: {spread}"
            time.sleep(0.2)

        # Workers whose supervisor was killed stop instead of holding the port.
        os.kill(server.proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in spread):
            assert time.monotonic() < deadline, f"workers {spread} outlived their supervisor"
            time.sleep(0.1)
    finally:
        out = server.stop()
    assert f"worker process {killed} exited with status -9; starting another" in out
