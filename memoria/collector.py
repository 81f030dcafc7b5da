"""How a serving process sets Python's garbage collector once start-up is done."""

from __future__ import annotations

import gc

# Container allocations between young-generation collections (CPython's default: 700). A
# search holds thousands of candidates' tuples at once, so at 700 a collection fell in
# every search and scanned them all while they were still alive: 600 searches over 20k
# turns spent 175-350 ms collecting at 700 and 44-78 ms at 5,000 (docs/BENCHMARKS.md).
YOUNG_THRESHOLD = 5_000


def settle_after_startup() -> None:
    """Move everything start-up built (modules, schema, caches) out of the collector's
    generations, so full collections stay short mid-request (before the freeze, one paused
    a burst of 200 chat streams for 88-157 ms: docs/benchmarks-history.md), and collect
    young objects less often. Called once, when the process is ready to serve; the in-process
    benchmarks call it too, to measure what the server runs."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
