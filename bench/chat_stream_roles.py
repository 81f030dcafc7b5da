"""The two other processes of ``bench/chat_stream.py``: a fake OpenAI-compatible provider
streaming timestamped tokens, and the Memoria server under uvicorn counting its SQL
statements per measured burst. Started by ``chat_stream.py --role provider|server``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# --- fake provider ------------------------------------------------------------------------


async def provider_main(port: int, tokens: int, rate: float) -> None:
    """A minimal HTTP/1.1 server: every POST streams ``tokens`` SSE chunks. Responses are
    chunked and connections kept alive, as real OpenAI-compatible servers do, so Memoria's
    connection pool reuses them instead of opening a TCP connection per turn."""

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        arrived = time.monotonic()
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        interval = 1.0 / rate
        start = time.monotonic()
        for i in range(tokens):
            # Sleep to the schedule, not by a fixed amount, so the rate holds under load.
            delay = start + (i + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.monotonic()
            text = f"{i}:{sent:.6f}:{arrived:.6f}|"
            event = {"choices": [{"index": 0, "delta": {"content": text}}]}
            writer.write(chunk(b"data: " + json.dumps(event).encode() + b"\n\n"))
            await writer.drain()
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        # Memoria asks for ``stream_options.include_usage`` and real OpenAI-compatible
        # servers honour it; without it Memoria would tokenize the (here unusually long,
        # numeric) reply itself to bill it.
        usage = {
            "choices": [],
            "usage": {"prompt_tokens": length // 4, "completion_tokens": tokens},
        }
        writer.write(
            chunk(
                b"data: " + json.dumps(done).encode() + b"\n\n"
                b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"
            )
            + b"0\r\n\r\n"
        )
        await writer.drain()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not reader.at_eof():
                await respond(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# --- Memoria server -------------------------------------------------------------------------


def server_main(port: int, data_dir: str, embedder: str, database_url: str | None) -> None:
    import uvicorn

    from memoria.app import build_app
    from memoria.cli.serve import uvicorn_options
    from memoria.integration_settings import IntegrationSettings
    from memoria.settings import Settings

    settings = Settings(
        host="127.0.0.1",
        port=port,
        data_dir=Path(data_dir),
        database_url=database_url,
        environment="test",
        embedder=embedder,
        fast_password_hashing=True,
        admin_password="bench-admin-password",
        # The bench's fake LLM listens on loopback: allowed explicitly, as an operator would.
        integrations=IntegrationSettings(allowed_private_hosts=("127.0.0.1",)),
        # As `memoria serve` reads it (the --workers runs are configured the same way).
        remember_messages=os.environ.get("MEMORIA_REMEMBER_MESSAGES", "on") != "off",
    ).validated()
    if os.environ.get("MEMORIA_BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["MEMORIA_BENCH_SWITCH_INTERVAL"]))
    app = build_app(settings)
    count_statements(app.state.runtime.db.engine.sync_engine, Path(data_dir) / "sql-count")
    # As `memoria serve` runs it (per-message deflate off, among others).
    uvicorn.run(app, **uvicorn_options(settings, log_level="warning"))


def count_statements(sync_engine: Any, out: Path) -> None:
    """Count SQL statements between SIGUSR1 (sent when the measured burst starts) and
    SIGUSR2 (sent when it ended; the count is then written to ``out``), for "statements
    per turn". With ``MEMORIA_BENCH_SQL_TRACE=<file>`` each statement is also logged with
    its time and connection, to see what a turn runs."""
    import signal

    from sqlalchemy import event

    count = [0]
    trace_path = os.environ.get("MEMORIA_BENCH_SQL_TRACE")
    trace = open(trace_path, "a", buffering=1) if trace_path else None  # noqa: SIM115  # open until exit

    def on_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        count[0] += 1
        if trace is not None:
            trace.write(f"{time.monotonic():.4f} {id(conn)} {' '.join(statement.split())[:160]}\n")

    event.listen(sync_engine, "before_cursor_execute", on_execute)
    # ``MEMORIA_BENCH_PROFILE=<file>``: cProfile the server's event-loop thread over the
    # measured burst only.
    profile_path = os.environ.get("MEMORIA_BENCH_PROFILE")
    profiler = None
    if profile_path:
        import cProfile

        # The main thread's CPU time, not wall time: a syscall that lets another process
        # run (waking a client) must not look like our cost.
        profiler = cProfile.Profile(time.thread_time)

    # Garbage-collector pauses over the burst, per generation: (collections, total s, max s).
    import gc

    pauses: dict[int, list[float]] = {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        took = time.perf_counter() - gc_started[0]
        entry = pauses[info["generation"]]
        entry[0] += 1
        entry[1] += took
        entry[2] = max(entry[2], took)

    def started(*_: Any) -> None:
        if os.environ.get("MEMORIA_BENCH_GC_FREEZE"):
            # Experiment (``--gc-freeze``): what ``gc.freeze()`` at the end of start-up
            # would do; the server itself does not do this (memoria/app.py's lifespan would).
            gc.collect()
            gc.freeze()
        count[0] = 0
        for entry in pauses.values():
            entry[:] = [0, 0.0, 0.0]
        gc.callbacks.append(on_gc)
        if profiler is not None:
            profiler.enable()

    def ended(*_: Any) -> None:
        gc.callbacks.remove(on_gc)
        (out.parent / "gc-pauses").write_text(json.dumps(pauses))
        out.write_text(str(count[0]))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)

    signal.signal(signal.SIGUSR1, started)
    signal.signal(signal.SIGUSR2, ended)


# --- clients -----------------------------------------------------------------------------
