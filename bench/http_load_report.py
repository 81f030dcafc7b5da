"""The table bench/http_load.py prints: one row per cell (CPU per request split between the
server, PostgreSQL, the load generator and the rest of the machine) and the ratios the
targets are stated in, with a paper estimate of the server side's capacity per core count."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Cell:
    """One measured combination: its latencies' percentiles, and CPU seconds per party."""

    backend: str
    processes: int
    surface: str
    op: str
    clients: int
    requests: int
    errors: int
    wall: float
    p50: float
    p99: float
    server_cpu: float
    pg_cpu: float
    loadgen_cpu: float
    machine_cpu: float
    first_error: str

    @property
    def rate(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    def per_request_ms(self, seconds: float) -> float:
        return 1000 * seconds / max(self.requests, 1)


HEADER = (
    "| backend | processes | surface | op | clients | requests | req/s | p50 ms | p99 ms "
    "| server CPU ms/req | PostgreSQL CPU ms/req | load gen CPU ms/req | other CPU ms/req "
    "| errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(c: Cell) -> str:
    other = c.machine_cpu - c.server_cpu - c.pg_cpu - c.loadgen_cpu
    pg = f"{c.per_request_ms(c.pg_cpu):.2f}" if c.backend == "postgres" else "-"
    return (
        f"| {c.backend} | {c.processes} | {c.surface} | {c.op} | {c.clients} | {c.requests} "
        f"| {c.rate:.1f} | {c.p50:.1f} | {c.p99:.1f} | {c.per_request_ms(c.server_cpu):.2f} "
        f"| {pg} | {c.per_request_ms(c.loadgen_cpu):.2f} | {c.per_request_ms(max(other, 0)):.2f} "
        f"| {c.errors} |"
    )


def capacity(cell: Cell, cores: int) -> float:
    """Requests/s the server side could sustain on ``cores`` (load generator elsewhere):
    each process runs Python on at most one core; server and PostgreSQL share the cores."""
    server_ms = cell.per_request_ms(cell.server_cpu)
    total_ms = server_ms + cell.per_request_ms(cell.pg_cpu)
    return min(cell.processes * 1000 / server_ms, cores * 1000 / total_ms)


def summary(cells: list[Cell]) -> list[str]:
    lines = []
    index = {(c.backend, c.processes, c.surface, c.op, c.clients): c for c in cells}
    for (backend, processes, surface, op, clients), c in index.items():
        rest = index.get((backend, processes, "rest", op, clients))
        if surface == "graphql" and clients == 1 and rest and rest.p50:
            lines.append(
                f"GraphQL / REST p50, {op}, 1 client, {backend}, {processes} process(es): "
                f"{c.p50:.1f} / {rest.p50:.1f} ms = {c.p50 / rest.p50:.2f}x (target <= 1.5x)"
            )
    for (backend, processes, surface, op, clients), c in index.items():
        one = index.get((backend, 1, surface, op, clients))
        if processes == 2 and op == "search" and clients > 1 and one and one.rate:
            lines.append(
                f"2 / 1 processes, {op} req/s, {clients} clients, {backend}, {surface}: "
                f"{c.rate:.1f} / {one.rate:.1f} = {c.rate / one.rate:.2f}x (target >= 1.4x at 8 "
                f"clients); on paper from CPU per request, 2 cores: "
                f"{capacity(c, 2) / capacity(one, 2):.2f}x, 4 cores: "
                f"{capacity(c, 4) / capacity(one, 4):.2f}x "
                f"({capacity(one, 4):.0f} -> {capacity(c, 4):.0f} req/s)"
            )
    return lines
