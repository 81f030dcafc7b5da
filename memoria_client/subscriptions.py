"""A running subscription as an iterator of typed events.

``async for event in client.chat("Hi")`` reads until the server completes the stream; leave
early with ``async with client.chat("Hi") as events:`` (or call ``aclose()``) so the socket
is closed at once rather than when the object is garbage collected. The WebSocket opens on
the first ``next``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

from memoria_client.errors import MemoriaResponseError

T = TypeVar("T")


def _event(data: dict[str, Any], field: str, parse: Callable[[Any], T]) -> T:
    if field not in data:
        raise MemoriaResponseError(f"subscription event without {field!r}: {data!r}")
    return parse(data[field])


class AsyncSubscription(Generic[T]):
    """Events of one subscription, for ``async for``; ``async with`` closes it early."""

    def __init__(
        self,
        source: AsyncGenerator[dict[str, Any], None],
        field: str,
        parse: Callable[[Any], T],
    ) -> None:
        self._source = source
        self._field = field
        self._parse = parse

    def __aiter__(self) -> AsyncSubscription[T]:
        return self

    async def __anext__(self) -> T:
        return _event(await anext(self._source), self._field, self._parse)

    async def aclose(self) -> None:
        """Stop the subscription and close its socket (nothing happens when it ended)."""
        await self._source.aclose()

    async def __aenter__(self) -> AsyncSubscription[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class Subscription(Generic[T]):
    """Events of one subscription, for ``for``; ``with`` closes it early."""

    def __init__(
        self,
        source: Generator[dict[str, Any], None, None],
        field: str,
        parse: Callable[[Any], T],
    ) -> None:
        self._source = source
        self._field = field
        self._parse = parse

    def __iter__(self) -> Subscription[T]:
        return self

    def __next__(self) -> T:
        return _event(next(self._source), self._field, self._parse)

    def close(self) -> None:
        """Stop the subscription and close its socket (nothing happens when it ended)."""
        self._source.close()

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
