"""``memoria serve --workers N``: N server processes on one port, each accepting on a socket
of its own.

uvicorn's own workers share one listening socket, and the process that wakes first accepts
every connection waiting (uvloop accepts until the queue is empty). Clients that keep their
connections open (browsers, SDKs, a reverse proxy's upstream pool) mostly connect at once, so
they landed on one worker: eight keep-alive clients connecting together all went to the same
process in seven tries of ten (the other three split 7 / 1), and the second worker idled.

Here each worker binds its own socket with ``SO_REUSEPORT``; Linux then hands each new
connection to one of the sockets by a hash of its addresses, so connections spread over the
workers whatever wakes first (8 clients: 3 / 5 or 4 / 4 in eight tries of ten, never 8 / 0).
Elsewhere (``SO_REUSEPORT`` does not balance on macOS) uvicorn's shared socket is used.

The parent process only supervises: it refuses a port something already listens on (a
second deployment must not silently share it), stops the workers on SIGINT / SIGTERM,
replaces them one at a time on SIGHUP (each new worker serves before the old one stops, as
uvicorn's supervisor does), adds a worker on SIGTTIN and retires one on SIGTTOU (as
uvicorn's does), and starts a new worker when one dies after it was serving; a
worker that dies before serving stops them all, with its exit status. A worker stops when
its supervisor dies, even by SIGKILL, instead of holding the port on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from memoria.cli.common import FAILURE, CliError

logger = logging.getLogger("memoria.serve")

APP = "memoria.app:create_app"  # each worker builds its app from the environment
_BACKLOG = 2048  # uvicorn's default


def balances_connections() -> bool:
    """Whether several sockets on one port share its connections (Linux's ``SO_REUSEPORT``)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(host: str, port: int, options: dict[str, Any], ready: Event) -> None:
    """One worker process: its own socket on the shared port, the app, uvicorn."""
    import uvicorn

    _stop_with_parent()
    sock = listening_socket(host, port, reuse_port=True)
    config = uvicorn.Config(APP, factory=True, **options)
    server = uvicorn.Server(config)

    async def serve() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        # uvicorn's Server says it serves by a flag, not an event to wait on.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            ready.set()
        await serving

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve())


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_READY_SECONDS = 120.0  # a replacement worker's start-up: migrations, the embedder


def _stop_with_parent() -> None:
    """Linux: SIGTERM this process when the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Worker:
    process: SpawnProcess
    ready: Event

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then wait for the process to end."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()


@dataclass
class WorkerPool:
    """The supervising parent of ``workers`` processes serving ``host:port``."""

    host: str
    port: int
    workers: int
    options: dict[str, Any]  # uvicorn's, as ``memoria serve`` runs it
    _context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    _running: list[_Worker] = field(default_factory=list)
    _stopping: bool = False
    _replacing: bool = False
    _resize: int = 0  # workers to add (SIGTTIN) or, below 0, to retire (SIGTTOU)

    def run(self) -> int:
        """Serve until stopped; the exit status for the command."""
        self._claim_port()
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._replace)
        previous[signal.SIGTTIN] = signal.signal(signal.SIGTTIN, self._grow)
        previous[signal.SIGTTOU] = signal.signal(signal.SIGTTOU, self._shrink)
        try:
            self._running = [self._start() for _ in range(self.workers)]
            return self._supervise()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _claim_port(self) -> None:
        """Refuse a port another server listens on: a socket without ``SO_REUSEPORT`` cannot
        bind beside a listening one, so a second deployment fails here instead of quietly
        taking half of the first one's connections. Port 0 becomes the port chosen here."""
        try:
            probe = listening_socket(self.host, self.port, reuse_port=False)
        except OSError as exc:
            raise CliError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = probe.getsockname()[1]
        probe.close()

    def _start(self) -> _Worker:
        ready = self._context.Event()
        process = self._context.Process(
            target=_worker, args=(self.host, self.port, self.options, ready), daemon=False
        )
        process.start()
        logger.info("started worker process %s", process.pid)
        return _Worker(process, ready)

    def _supervise(self) -> int:
        while not self._stopping:
            wait([w.process.sentinel for w in self._running], timeout=0.5)
            if self._replacing:
                self._replacing = False
                self._replace_all()
            self._apply_resize()
            for index, worker in enumerate(self._running):
                if worker.process.is_alive() or self._stopping:
                    continue
                status = worker.process.exitcode
                if not worker.ready.is_set():
                    logger.error("worker process %s exited before serving", worker.process.pid)
                    return status if status else FAILURE
                logger.warning(
                    "worker process %s exited with status %s; starting another",
                    worker.process.pid,
                    status,
                )
                self._running[index] = self._start()
        return 0

    def _replace_all(self) -> None:
        """Start a new worker, wait until it serves, then stop the one it replaces."""
        for index, old in enumerate(self._running):
            if self._stopping:
                return
            new = self._start()
            deadline = time.monotonic() + _READY_SECONDS
            while not new.ready.wait(0.2):
                if self._stopping or not new.process.is_alive() or time.monotonic() > deadline:
                    new.process.kill()
                    new.process.join()
                    logger.error("a new worker did not start; keeping the ones serving")
                    return
            old.stop()
            self._running[index] = new
        logger.info("replaced every worker")

    def _apply_resize(self) -> None:
        while self._resize > 0:
            self._resize -= 1
            self._running.append(self._start())
        while self._resize < 0:
            self._resize += 1
            if len(self._running) == 1:
                logger.warning("one worker left: SIGTTOU ignored")
                continue
            retired = self._running.pop()
            retired.stop()
            logger.info("retired worker process %s", retired.process.pid)

    def _grow(self, _signum: int, _frame: FrameType | None) -> None:
        self._resize += 1

    def _shrink(self, _signum: int, _frame: FrameType | None) -> None:
        self._resize -= 1

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _replace(self, _signum: int, _frame: FrameType | None) -> None:
        self._replacing = True

    def _stop_all(self) -> None:
        # Signalled all at once, then awaited: they shut down side by side, not in turn.
        for worker in self._running:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        for worker in self._running:
            worker.process.join()
