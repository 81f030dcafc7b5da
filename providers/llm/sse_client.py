"""A lean HTTP/1.1 client for one thing: POST a JSON body and stream the response's bytes.

Relaying a token from an OpenAI-compatible upstream through httpx costs ~45 us of CPU (httpx
and httpcore's stream wrappers, h11's event parser, and anyio's per-read cancel scope with
its ``fail_after`` timeout and ``sniffio`` look-ups); at 10,000 tokens/s that alone is half a
core. Here a read is an asyncio ``Protocol`` buffer, a future and one timer, and the chunked
framing is split by hand: the same stream costs ~15 us per token (``bench/chat_stream.py``).

Deliberately small: keep-alive connections pooled per origin, ``Content-Length``, chunked or
read-to-close bodies, TLS through the same trust store as httpx
(``httpx.create_ssl_context``), no proxies (the httpx client here has ``trust_env=False``
too), no redirects (httpx follows none by default), no compression (``Accept-Encoding:
identity``), no HTTP/2. Failures raise this module's :class:`ConnectFailed`,
:class:`TimedOut` and :class:`Broken`; ``http_base`` maps them as it maps httpx's.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx


class TransportFailed(Exception):
    pass


class ConnectFailed(TransportFailed):
    pass


class TimedOut(TransportFailed):
    pass


class Broken(TransportFailed):
    pass


_MAX_HEAD = 64 * 1024
_PAUSE_AT = 1024 * 1024


class _Connection(asyncio.Protocol):
    """A socket's received bytes, and a waiter for more."""

    def __init__(self) -> None:
        self.transport: Any = None  # an asyncio.Transport (uvloop's is not a subclass)
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._deadline = 0.0  # loop time by which the current read must have data
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _PAUSE_AT and self.transport is not None and not self._paused:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # reading

    @property
    def reusable(self) -> bool:
        return not self.eof and self.transport is not None and not self.transport.is_closing()

    async def more(self, timeout: float | None) -> None:  # noqa: ASYNC109  # one cheap timer
        """Wait until more bytes arrived (or the peer closed); TimedOut after ``timeout``.

        A read only moves the connection's deadline forward: the one timer, when it fires
        early, re-arms itself for what is left. A timer scheduled and cancelled per read
        (let alone a cancel scope, what made httpx slow) costs more than the read."""
        if self.eof:
            raise Broken("connection closed") from self.error
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if timeout is not None:
            self._deadline = deadline = loop.time() + timeout
            timer = self._timer
            if timer is None or deadline < timer.when():  # none yet, or set for a longer wait
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._check_deadline)
        try:
            await waiter
        finally:
            self._waiter = None

    def _check_deadline(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # not reading now: the next read sets a new deadline and timer
        loop = waiter.get_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._check_deadline)
        else:
            waiter.set_exception(TimedOut("read timed out"))

    def take(self, n: int | None = None) -> bytes:
        if n is None or n >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:n])
            del self.buffer[:n]
        return data

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()


class StreamResponse:
    """Status, headers and the body of one response, read as it arrives."""

    def __init__(
        self,
        conn: _Connection,
        status: int,
        headers: httpx.Headers,
        read_timeout: float | None,
    ) -> None:
        self.status_code = status
        self.headers = headers
        self._conn = conn
        self._timeout = read_timeout
        self.complete = False  # the whole body was read: the connection can be reused
        encoding = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in encoding
        length = headers.get("content-length")
        self._remaining: int | None = None
        if not self._chunked and length is not None:
            try:
                self._remaining = int(length)
            except ValueError:
                raise Broken("bad Content-Length") from None
        self.keep_alive = headers.get("connection", "").lower() != "close" and (
            self._chunked or self._remaining is not None
        )

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        # A chunked body (what streaming servers send) is read by ``_chunks`` itself, not
        # relayed through a second generator: one frame less to resume per token.
        if self._chunked and not self.complete:
            return self._chunks()
        return self._unchunked()

    async def _unchunked(self) -> AsyncIterator[bytes]:
        if self.complete:
            return
        if self._remaining is not None:
            conn = self._conn
            while self._remaining > 0:
                if not conn.buffer:
                    await conn.more(self._timeout)
                    continue
                piece = conn.take(self._remaining)
                self._remaining -= len(piece)
                yield piece
        else:  # until the server closes
            conn = self._conn
            while True:
                if conn.buffer:
                    yield conn.take()
                elif conn.eof:
                    break
                else:
                    await conn.more(self._timeout)
        self.complete = True

    async def _chunks(self) -> AsyncIterator[bytes]:
        conn, buf = self._conn, self._conn.buffer
        while True:
            # Everything that arrived, as whole chunks joined (one yield per network read).
            out: list[bytes] = []
            while True:
                end = buf.find(b"\r\n")
                if end < 0:
                    break
                size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise Broken("bad chunk size") from None
                if size == 0:  # the last chunk, then trailers (if any) and an empty line
                    tail = buf.find(b"\r\n\r\n", end)
                    if tail < 0:
                        break
                    del buf[: tail + 4]
                    self.complete = True  # before the yield: the caller may stop there
                    if out:
                        yield b"".join(out)
                    return
                if len(buf) < end + 2 + size + 2:
                    break
                out.append(bytes(buf[end + 2 : end + 2 + size]))
                del buf[: end + 2 + size + 2]
            if out:
                yield b"".join(out)
                continue
            await conn.more(self._timeout)


Resolver = Callable[[str, int], Awaitable[list[str]]]


class LeanStreamClient:
    """Pooled keep-alive connections per origin; ``post_stream`` is the only request.

    ``resolve`` (the outbound guard's) gives the checked addresses of a host for each new
    connection; the socket goes to one of them while TLS keeps the host name. Whatever it
    raises (a refusal) reaches the caller unchanged."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        write_timeout: float = 30.0,
        max_idle_per_origin: int = 100,
        resolve: Resolver | None = None,
    ) -> None:
        self._resolve = resolve
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._max_idle = max_idle_per_origin
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._draining: set[asyncio.Task[None]] = set()

    async def _connect(self, scheme: str, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        ssl_context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            ssl_context = self._ssl
        try:
            async with asyncio.timeout(self._connect_timeout):
                addresses = [host] if self._resolve is None else await self._resolve(host, port)
                failure: Exception | None = None
                for address in addresses:
                    try:
                        _, protocol = await loop.create_connection(
                            _Connection,
                            address,
                            port,
                            ssl=ssl_context,
                            server_hostname=host if ssl_context else None,
                        )
                        return protocol
                    except (OSError, ssl.SSLError) as exc:
                        failure = exc
                raise ConnectFailed(str(failure))
        except TimeoutError:
            raise ConnectFailed("connect timed out") from None

    def _checkout(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.reusable and not conn.buffer:
                return conn
            conn.close()
        return None

    def _checkin(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, deque())
        if conn.reusable and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.close()

    @asynccontextmanager
    async def post_stream(
        self, url: str, *, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[StreamResponse]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ConnectFailed(f"unsupported URL {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, parts.hostname, port)
        host_header = parts.netloc.rsplit("@", 1)[-1]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {host_header}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            "Accept-Encoding: identity",
            "Connection: keep-alive",
            "User-Agent: memoria",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload

        reused = self._checkout(origin)
        conn = reused or await self._connect(scheme, parts.hostname, port)
        try:
            response = await self._exchange(conn, request)
        except (Broken, TimedOut):
            conn.close()
            if reused is None:
                raise
            # A kept-alive connection the server had closed meanwhile: once more, fresh.
            conn = await self._connect(scheme, parts.hostname, port)
            response = await self._exchange(conn, request)
        except BaseException:
            conn.close()
            raise
        try:
            yield response
        except BaseException:  # e.g. the turn was cancelled: dropping the socket ends it
            conn.close()
            raise
        if response.complete and response.keep_alive:
            self._checkin(origin, conn)
        elif response.keep_alive:
            # The caller stopped at the end of its data (``[DONE]``) before the framing's
            # end: read that in the background, then keep the connection.
            task = asyncio.get_running_loop().create_task(self._drain(origin, conn, response))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
        else:
            conn.close()

    async def _drain(
        self, origin: tuple[str, str, int], conn: _Connection, response: StreamResponse
    ) -> None:
        response._timeout = min(self._read_timeout, 1.0)
        try:
            async for _ in response.aiter_bytes():
                pass
        except (TransportFailed, OSError):
            conn.close()
            return
        self._checkin(origin, conn)

    async def _exchange(self, conn: _Connection, request: bytes) -> StreamResponse:
        assert conn.transport is not None
        conn.transport.write(request)
        while True:
            end = conn.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(conn.buffer) > _MAX_HEAD:
                raise Broken("response head too large")
            await conn.more(self._read_timeout)
        head = conn.take(end + 4)[:-4].decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        try:
            _version, code, *_ = status_line.split(" ", 2)
            status = int(code)
        except ValueError:
            raise Broken("bad status line") from None
        pairs = []
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                pairs.append((name.strip(), value.strip()))
        response = StreamResponse(conn, status, httpx.Headers(pairs), self._read_timeout)
        if 100 <= status < 200:  # e.g. 100 Continue (never asked for): skip to the real one
            return await self._exchange_rest(conn)
        return response

    async def _exchange_rest(self, conn: _Connection) -> StreamResponse:
        return await self._exchange(conn, b"")

    async def aclose(self) -> None:
        for task in list(self._draining):
            task.cancel()
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
