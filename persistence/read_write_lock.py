"""A lock for many concurrent readers or one writer, on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ReadWriteLock:
    """Many concurrent readers (FAISS searches, which release the GIL) or one writer. A
    writer waits for the readers in progress; readers arriving meanwhile wait for it."""

    def __init__(self) -> None:
        self._readers = 0
        self._writer = asyncio.Lock()
        self._no_readers = asyncio.Event()
        self._no_readers.set()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        async with self._writer:
            self._readers += 1
            self._no_readers.clear()
        try:
            yield
        finally:
            self._readers -= 1
            if self._readers == 0:
                self._no_readers.set()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        async with self._writer:
            await self._no_readers.wait()
            yield
