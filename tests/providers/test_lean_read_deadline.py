"""The lean client's read timeout: one timer per connection, moved forward by each read."""

from __future__ import annotations

import asyncio
import time

import pytest

from providers.llm.sse_client import TimedOut, _Connection


async def test_a_trickle_longer_than_the_timeout_never_times_out() -> None:
    conn = _Connection()

    async def trickle() -> None:
        for _ in range(8):
            await asyncio.sleep(0.05)
            conn.data_received(b"x")

    feeder = asyncio.create_task(trickle())
    started = time.monotonic()
    for _ in range(8):  # each read waits ~0.05 s of its 0.15 s; all of them take ~0.4 s
        await conn.more(0.15)
        assert conn.take() == b"x"
    assert time.monotonic() - started > 0.15
    await feeder


async def test_silence_past_the_timeout_fails_even_after_a_longer_one() -> None:
    conn = _Connection()
    asyncio.get_running_loop().call_later(0.01, conn.data_received, b"x")
    await conn.more(30.0)  # arms the connection's timer 30 s ahead
    conn.take()
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await conn.more(0.1)  # a shorter wait must not inherit the 30 s timer
    assert time.monotonic() - started < 2.0
    conn.close()
