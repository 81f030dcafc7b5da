"""Load over real HTTP: requests/s, p50/p99 and CPU per request for adding and searching
memories through REST and GraphQL, with 1, 8 and 32 concurrent clients, one or two server
processes, embedded (SQLite) or PostgreSQL.

Each configuration starts `python -m memoria.cli serve` (``--workers 2`` for two processes,
PostgreSQL only), registers a user and creates an API key through GraphQL (`register`,
`createApiKey`), creates a field and fills it as a client would: LoCoMo turns
``"Speaker: text"``, kind EPISODE, dated by their session, in `addMemories` batches. Then each
cell runs one operation through one surface with N clients, each its own keep-alive HTTP
connection (httpx), searches before adds so every search sees the same field:

- search: GraphQL `searchMemories(fieldId, query, topK: 5)` and REST (Sentech)
  `POST /fields/{fieldId}/memories/query {"query", "top_k": 5}`: both one
  `MemoryService.search` over that field; the GraphQL selection asks for the fields the REST
  body carries. Queries are the LoCoMo questions.
- add: GraphQL `addMemory(fieldId, input: {content, occurredAt})` and REST (Sentech)
  `POST /fields/{fieldId}/memories {"content", "timestamp"}`: both one `MemoryService.add`
  of the same draft. Contents are LoCoMo turns the seeding left out.

CPU per request comes from /proc: the server's process tree (its workers included), the
PostgreSQL server's tree, this process (the load generator), and the whole machine (what is
left is other work on the box). The search class of rate limits is raised, not switched off,
so the counting stays in the measured path.

    .venv/bin/python bench/http_load.py                      # everything (about 15 minutes)
    .venv/bin/python bench/http_load.py --backend sqlite --clients 1,8 --requests 100
    .venv/bin/python bench/http_load.py --backend postgres --surface graphql --op search \\
        --clients 8 --duration 15

A cell of 100 requests lasts a second or two: warm-up and PostgreSQL's own background work
(autovacuum after the seeding) land in it. For throughput ratios (1 vs 2 processes) use
longer cells, e.g. ``--requests 2000 --duration 20`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load_report import HEADER, Cell, row, summary  # beside this file
from http_load_system import (
    Postgres,
    Server,
    ServerOptions,
    cpu_seconds,
    descendants,
    machine_busy_seconds,
    tree_cpu_delta,
    vacuum_analyze,
)

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"
TOP_K = 5
REGISTER = """mutation($i: RegisterInput!) { register(input: $i) { accessToken } }"""
API_KEY = "mutation($n: String!) { createApiKey(name: $n) { key } }"
FIELD = "mutation($n: String!) { createMemoryField(name: $n) { id } }"
ADD_MANY = "mutation($f: ID!, $i: [MemoryInput!]!) { addMemories(fieldId: $f, inputs: $i) { id } }"
# The selections ask for what the REST bodies carry (Sentech memory_body / query results).
ADD_ONE = """mutation($f: ID!, $i: MemoryInput!) { addMemory(fieldId: $f, input: $i) {
  id fieldId content source tags metadata occurredAt createdAt } }"""
SEARCH = """query($f: ID!, $q: String!, $k: Int!) { searchMemories(fieldId: $f, query: $q,
  topK: $k) { score memory { id content metadata createdAt } } }"""


@dataclass
class Corpus:
    """LoCoMo as a client sends it: turns to seed, turns to add under load, questions."""

    seed: list[dict[str, Any]]
    extra: list[dict[str, Any]]
    questions: list[str]


def load_corpus(path: Path, seed_turns: int) -> Corpus:
    samples = json.loads(path.read_text())
    turns, questions = [], []
    for sample in samples:
        conversation = sample["conversation"]
        numbers = sorted(
            int(k.split("_")[1]) for k in conversation if re.fullmatch(r"session_\d+", k)
        )
        for number in numbers:
            when = datetime.strptime(
                conversation[f"session_{number}_date_time"].strip(), "%I:%M %p on %d %B, %Y"
            ).replace(tzinfo=UTC)
            for turn in conversation[f"session_{number}"]:
                text = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    text += f" [shares {turn['blip_caption']}]"
                turns.append({"content": text, "occurredAt": when.isoformat()})
        questions += [str(qa["question"]) for qa in sample["qa"]]
    return Corpus(seed=turns[:seed_turns], extra=turns[seed_turns:] or turns, questions=questions)


@dataclass
class Target:
    url: str
    key: str
    field_id: str


async def prepare(url: str, corpus: Corpus, batch: int = 100) -> Target:
    """A user, an API key and a seeded field, through the documented GraphQL API."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:

        async def gql(query: str, variables: dict[str, Any], token: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            body = (
                await http.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
            ).json()
            if body.get("errors"):
                raise SystemExit(f"GraphQL error while preparing: {body['errors']}")
            return body["data"]

        user = {"username": "loadtest", "email": "load@example.com", "password": "load-password-1"}
        token = (await gql(REGISTER, {"i": user}))["register"]["accessToken"]
        key = (await gql(API_KEY, {"n": "http-load"}, token))["createApiKey"]["key"]
        field_id = (await gql(FIELD, {"n": "locomo"}, key))["createMemoryField"]["id"]
        for start in range(0, len(corpus.seed), batch):
            inputs = [{**t, "kind": "EPISODE"} for t in corpus.seed[start : start + batch]]
            await gql(ADD_MANY, {"f": field_id, "i": inputs}, key)
    return Target(url=url, key=key, field_id=field_id)


Request = Callable[[httpx.AsyncClient, int], Any]


def request_for(surface: str, op: str, target: Target, corpus: Corpus) -> Request:
    """One call of the cell: sends the n-th request, raises on any error."""
    f = target.field_id

    async def graphql(http: httpx.AsyncClient, n: int) -> None:
        if op == "search":
            variables = {"f": f, "q": corpus.questions[n % len(corpus.questions)], "k": TOP_K}
            query = SEARCH
        else:
            variables = {"f": f, "i": corpus.extra[n % len(corpus.extra)]}
            query = ADD_ONE
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        if response.status_code != 200 or '"errors"' in response.text:
            raise RuntimeError(f"{response.status_code} {response.text[:300]}")

    async def rest(http: httpx.AsyncClient, n: int) -> None:
        if op == "search":
            body = {"query": corpus.questions[n % len(corpus.questions)], "top_k": TOP_K}
            response = await http.post(f"/fields/{f}/memories/query", json=body)
        else:
            turn = corpus.extra[n % len(corpus.extra)]
            body = {"content": turn["content"], "timestamp": turn["occurredAt"]}
            response = await http.post(f"/fields/{f}/memories", json=body)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{response.status_code} {response.text[:300]}")

    return graphql if surface == "graphql" else rest


def percentile(sorted_ms: Sequence[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, round(p / 100 * (len(sorted_ms) - 1)))]


async def run_cell(
    request: Request,
    target: Target,
    clients: int,
    total: int,
    duration: float,
    trees: dict[str, int],
    offset: int,
) -> tuple[list[float], int, str, float, dict[str, float]]:
    """``total`` requests (or ``duration`` seconds) from ``clients`` connections, after a
    warm-up on the same connections; latencies in ms and CPU seconds per party."""
    headers = {"Authorization": f"Bearer {target.key}"}
    connections = [
        httpx.AsyncClient(base_url=target.url, headers=headers, timeout=120) for _ in range(clients)
    ]
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(offset, offset + 10**9))

    async def client(http: httpx.AsyncClient, until: int, deadline: float, keep: bool) -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            if n - offset >= until:
                return
            started = time.perf_counter()
            try:
                await request(http, n)
            except (RuntimeError, httpx.HTTPError) as exc:
                errors.append(str(exc) or type(exc).__name__)
                continue
            if keep:
                latencies.append((time.perf_counter() - started) * 1000)

    try:
        warm = max(clients * 2, min(20, total))
        await asyncio.gather(*(client(h, warm, time.monotonic() + 60, False) for h in connections))
        warm_errors = len(errors)
        offset += warm
        counter = iter(range(offset, offset + 10**9))
        before = {name: cpu_seconds(descendants(pid)) for name, pid in trees.items()}
        own, busy, started = time.process_time(), machine_busy_seconds(), time.perf_counter()
        deadline = time.monotonic() + duration
        await asyncio.gather(*(client(h, total, deadline, True) for h in connections))
        wall = time.perf_counter() - started
        spent = {
            name: tree_cpu_delta(before[name], cpu_seconds(descendants(pid)))
            for name, pid in trees.items()
        }
        spent["loadgen"] = time.process_time() - own
        spent["machine"] = machine_busy_seconds() - busy
    finally:
        await asyncio.gather(*(h.aclose() for h in connections))
    measured_errors = errors[warm_errors:]
    return sorted(latencies), len(measured_errors), (errors or [""])[0], wall, spent


async def run_configuration(
    backend: str, processes: int, args: argparse.Namespace, corpus: Corpus, pg: Postgres | None
) -> list[Cell]:
    database_url = pg.create_database() if pg else None
    server = Server(ServerOptions(database_url, processes, args.embedder, args.pg_vectors))
    cells = []
    try:
        server.wait_healthy()
        began = time.perf_counter()
        target = await prepare(server.url, corpus)
        if database_url:
            # What autovacuum would do a little later anyway: otherwise its analyze of the
            # fresh rows lands in the first cells and charges them PostgreSQL's CPU.
            await vacuum_analyze(database_url)
        print(
            f"# {backend}, {processes} process(es): seeded {len(corpus.seed)} turns in "
            f"{time.perf_counter() - began:.1f} s",
            flush=True,
        )
        trees = {"server": server.proc.pid}
        if pg:
            trees["pg"] = pg.pid
        offset = 0
        for op in [o for o in ("search", "add") if o in args.op]:
            for surface in args.surface:
                for clients in args.clients:
                    request = request_for(surface, op, target, corpus)
                    latencies, errors, first_error, wall, spent = await run_cell(
                        request, target, clients, args.requests, args.duration, trees, offset
                    )
                    offset += args.requests + clients * 2 + 20
                    cell = Cell(
                        backend=backend,
                        processes=processes,
                        surface=surface,
                        op=op,
                        clients=clients,
                        requests=len(latencies),
                        errors=errors,
                        wall=wall,
                        p50=percentile(latencies, 50),
                        p99=percentile(latencies, 99),
                        server_cpu=spent["server"],
                        pg_cpu=spent.get("pg", 0.0),
                        loadgen_cpu=spent["loadgen"],
                        machine_cpu=spent["machine"],
                        first_error=first_error,
                    )
                    print(row(cell), flush=True)
                    if first_error:
                        print(f"#   first error: {first_error}", flush=True)
                    cells.append(cell)
    finally:
        server.stop()
    return cells


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def parse(argv: Sequence[str]) -> argparse.Namespace:
    def listed(choices: Sequence[str]) -> Callable[[str], list[str]]:
        def parse_list(text: str) -> list[str]:
            picked = [t.strip() for t in text.split(",") if t.strip()]
            if not picked or any(t not in choices for t in picked):
                raise argparse.ArgumentTypeError(f"pick from {','.join(choices)}")
            return picked

        return parse_list

    def numbers(text: str) -> list[int]:
        try:
            picked = [int(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError("a comma-separated list of numbers") from None
        if not picked or min(picked) < 1:
            raise argparse.ArgumentTypeError("numbers of at least 1")
        return picked

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", type=listed(("sqlite", "postgres")), default="sqlite,postgres")
    parser.add_argument("--processes", type=numbers, default="1,2", help="2: --workers 2")
    parser.add_argument("--clients", type=numbers, default="1,8,32")
    parser.add_argument("--surface", type=listed(("rest", "graphql")), default="rest,graphql")
    parser.add_argument("--op", type=listed(("search", "add")), default="search,add")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per cell")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per cell at most")
    parser.add_argument("--seed", type=int, default=4000, help="LoCoMo turns in the field")
    parser.add_argument("--embedder", choices=("hashing",), help="default: the shipped one")
    parser.add_argument(
        "--pg-vectors",
        choices=("process", "database"),
        default="process",
        help="PostgreSQL mode's vector search (MEMORIA_VECTOR_SEARCH)",
    )
    parser.add_argument("--data", type=Path, default=LOCOMO)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.duration <= 0 or args.seed < 1:
        parser.error("--requests, --duration and --seed must be positive")
    if not args.data.is_file():
        parser.error(f"no LoCoMo data at {args.data}")
    return args


async def main(argv: Sequence[str]) -> list[str]:
    args = parse(argv)
    corpus = load_corpus(args.data, args.seed)
    report = [f"$ .venv/bin/python bench/http_load.py {shlex.join(argv)}".rstrip(), HEADER]
    print("\n".join(report), flush=True)
    print(f"# load average at the start: {load_average()}", flush=True)
    cells: list[Cell] = []
    pg = Postgres() if "postgres" in args.backend else None
    try:
        for backend in args.backend:
            for processes in args.processes:
                if backend == "sqlite" and processes > 1:
                    continue  # embedded mode refuses --workers: it is one process
                cells += await run_configuration(
                    backend, processes, args, corpus, pg if backend == "postgres" else None
                )
    finally:
        if pg:
            pg.close()
    report += [row(c) for c in cells]
    report.append(f"load average at the end: {load_average()}")
    report += summary(cells)
    print("\n" + "\n".join(report), flush=True)
    if any(c.errors for c in cells) or not all(c.requests for c in cells):
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
