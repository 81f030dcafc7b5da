"""Background work across two `memoria serve` processes (workers on) on one PostgreSQL
database: every webhook delivery is made exactly once, and a job whose process is killed
(SIGKILL) while it holds the claim is finished by the other process once the lease lapses.

A real loopback receiver counts webhook hits; a fake LLM on loopback answers chat turns and
the extraction calls of the background job, and tells which process called it (the
client's port, matched to its process through /proc)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from conftest import PgServer, RunningServer
from fake_llm import FakeLLM, Reply
from server_processes import Server, deployment_env
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from worker_support import Receiver

from persistence.tables.jobs import jobs

LEASE_SECONDS = 2.0
ADD_MESSAGE = """mutation($c: ID!, $t: String!) {
  addMessage(conversationId: $c, input: {role: "user", content: $t}) { id } }"""
CONVERSATION = 'mutation { createConversation(input: {title: "shared"}) { id } }'
REGISTER = """mutation { register(input: {username: "erin", email: "erin@example.com",
  password: "a-long-password"}) { accessToken } }"""
ADMIN = """mutation { login(input: {usernameOrEmail: "admin", password: "admin-password-123"})
  { accessToken } }"""
PROVIDER = """mutation($i: ProviderInput!) { createProvider(input: $i) { id } }"""
WEBHOOK = """mutation($u: String!) { createWebhook(url: $u, events: ["message.created"]) {
  webhook { id } } }"""
SEND = """mutation($m: String!) { sendMessage(input: {message: $m}) { message { id model } } }"""
FACTS = """query { searchMemories(namespace: "default", query: "baker Lyon", topK: 5) {
  memory { content source } } }"""


def _env(pg_server: PgServer, data_dir: Path, database: str) -> dict[str, str]:
    return deployment_env(
        pg_server,
        data_dir,
        database,
        MEMORIA_BACKGROUND_WORKERS="on",
        # The receiver and the fake LLM listen on loopback, listed as an operator would.
        MEMORIA_ALLOWED_PRIVATE_HOSTS="127.0.0.1",
        MEMORIA_JOB_LEASE_SECONDS=str(LEASE_SECONDS),  # a dead process's claim lapses fast
    )


class CallingLLM:
    """The fake LLM, noting each request's client port and arrival time."""

    def __init__(self) -> None:
        self.llm = FakeLLM()
        self.calls: list[tuple[int, float]] = []

    def app(self) -> Starlette:
        async def openai(request: Request) -> Response:
            assert request.client is not None
            self.calls.append((request.client.port, time.monotonic()))
            response: Response = await self.llm.openai(request)
            return response

        return Starlette(routes=[Route("/v1/chat/completions", openai, methods=["POST"])])


def _process_of(port: int, servers: list[Server]) -> Server:
    """The server process owning the loopback TCP socket bound to local ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for server in servers:
        for fd in Path(f"/proc/{server.proc.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return server
    raise AssertionError(f"no server process has a socket on port {port}")


async def _until(probe: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within} s")


async def _deliveries_exactly_once(a: Server, b: Server, token: str, hook_url: str) -> Any:
    """Messages stored through both processes; each delivery reaches the receiver once."""
    await a.gql(WEBHOOK, {"u": hook_url}, token)
    conversation = (await b.gql(CONVERSATION, {}, token))["data"]["createConversation"]["id"]
    sent = []
    for n in range(20):
        server = (a, b)[n % 2]
        stored = await server.gql(ADD_MESSAGE, {"c": conversation, "t": f"note {n}"}, token)
        sent.append(stored["data"]["addMessage"]["id"])
    return sent


async def _dead_claim_taken_over(
    servers: list[Server], token: str, llm: CallingLLM
) -> tuple[float, str]:
    """A chat turn queues an extraction job; its claimer hangs in the model call and is
    killed; the other process claims the job once the lease lapsed and stores the fact."""
    facts = json.dumps({"facts": [{"fact": "Erin works as a baker in Lyon", "replaces": None}]})
    llm.llm.script(
        Reply(tokens=["Noted."]),  # the chat turn
        Reply(tokens=[facts], hang=3.0),  # the first claimer's extraction call: it hangs
        Reply(tokens=[facts]),  # the second claimer's
    )
    reply = await servers[0].gql(SEND, {"m": "I work as a baker in Lyon"}, token)
    assert reply["data"]["sendMessage"]["message"]["model"] == "fake-gpt", reply
    await _until(lambda: _at_least(llm.calls, 2), 10, "an extraction job was claimed")
    port, claimed_at = llm.calls[1]
    holder = _process_of(port, servers)
    holder.proc.kill()  # SIGKILL: no shutdown, its claim is simply abandoned
    other = servers[1] if holder is servers[0] else servers[0]
    await _until(lambda: _at_least(llm.calls, 3), 15, "the other process took the job over")
    taken_over = llm.calls[2][1] - claimed_at

    async def learned() -> Any:
        found = (await other.gql(FACTS, {}, token)).get("data") or {}
        return [h["memory"] for h in found.get("searchMemories") or []]

    memories = await _until(learned, 10, "the fact was stored")
    assert {"content": "Erin works as a baker in Lyon", "source": "chat"} in memories
    return taken_over, "A" if holder is servers[0] else "B"


async def _at_least(items: list[Any], n: int) -> bool:
    return len(items) >= n


async def test_background_work_runs_once_and_outlives_its_process(
    pg_server: PgServer, tmp_path: Path
) -> None:
    database = pg_server.create_database()
    a = Server(_env(pg_server, tmp_path / "a", database))
    b = Server(_env(pg_server, tmp_path / "b", database))
    receiver, llm = Receiver(), CallingLLM()
    hooks = await RunningServer(receiver.app()).start()
    model = await RunningServer(llm.app()).start()
    engine = create_async_engine(pg_server.url(database))
    try:
        a.wait_healthy()
        b.wait_healthy()

        async def scenario() -> tuple[list[str], collections.Counter[str], float, str]:
            token = (await a.gql(REGISTER, {}))["data"]["register"]["accessToken"]
            admin = (await b.gql(ADMIN, {}))["data"]["login"]["accessToken"]
            provider = {
                "name": "fake",
                "kind": "openai",
                "apiEndpoint": f"{model.url}/v1",
                "apiKey": "sk-admin-key-123",
                "models": [{"name": "fake-gpt", "contextWindow": 4096}],
            }
            assert "errors" not in await b.gql(PROVIDER, {"i": provider}, admin)
            sent = await _deliveries_exactly_once(a, b, token, f"{hooks.url}/hook")

            async def all_received() -> bool:
                return len({json.loads(r.body)["data"]["id"] for r in receiver.received}) >= 20

            await _until(all_received, 15, "every delivery arrived")
            await asyncio.sleep(1.5)  # more than a poll: a second delivery would be here now
            hits = collections.Counter(json.loads(r.body)["data"]["id"] for r in receiver.received)
            taken_over, killed = await _dead_claim_taken_over([a, b], token, llm)
            return sent, hits, taken_over, killed

        sent, hits, taken_over, killed = await asyncio.wait_for(scenario(), 60)
        async with engine.connect() as conn:
            left = (await conn.execute(select(func.count()).select_from(jobs))).scalar_one()
    finally:
        await a.http.aclose()
        await b.http.aclose()
        out_a, out_b = a.stop(), b.stop()
        await engine.dispose()
        await model.stop()
        await hooks.stop()
    assert sorted(hits) == sorted(sent)  # message.created carries the message id
    assert set(hits.values()) == {1}, hits  # exactly once each, though both processes deliver
    assert taken_over >= LEASE_SECONDS - 0.3, taken_over  # not before the lease lapsed
    assert left == 0  # the job is gone once done
    assert "Traceback" not in out_a + out_b
    print(
        f"\n20 webhook deliveries from 2 processes, each received once; the extraction job "
        f"claimed by {killed} (SIGKILLed) was taken over {taken_over:.2f} s after its claim "
        f"(lease {LEASE_SECONDS:.0f} s)"
    )
