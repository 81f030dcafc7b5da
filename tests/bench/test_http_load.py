"""bench/http_load.py in its smallest configuration: a real embedded server, the hashing
embedder, one client, a few requests of each kind through REST and GraphQL; its table has a
number in every measured column."""

from __future__ import annotations

import math

from bench_modules import load_bench


async def test_smallest_configuration_reports_numbers() -> None:
    http_load = load_bench("http_load")
    argv = "--backend sqlite --processes 1 --clients 1 --requests 4 --seed 40 --embedder hashing"
    report: list[str] = await http_load.main(argv.split())

    assert report[0] == f"$ .venv/bin/python bench/http_load.py {argv}"
    rows = [line.split("|")[1:-1] for line in report if line.startswith("| sqlite")]
    cells = {(r[2].strip(), r[3].strip()) for r in rows}
    assert cells == {(s, o) for s in ("rest", "graphql") for o in ("search", "add")}
    for r in rows:
        requests, rate, p50, p99, server_cpu = (float(v) for v in r[5:10])
        assert requests == 4
        assert rate > 0
        assert 0 < p50 <= p99
        assert math.isfinite(server_cpu)
        assert r[10].strip() == "-"  # no PostgreSQL in embedded mode
        assert int(r[13]) == 0  # errors
    ratios = [line for line in report if line.startswith("GraphQL / REST p50")]
    assert len(ratios) == 2
