"""Committed domain events fanned out to the other processes of one PostgreSQL deployment.

Each process keeps its in-process :class:`~domain.event_bus.EventBus` for its own
subscribers. On PostgreSQL, a ``before_commit`` hook adds ``pg_notify('memoria_events', …)``
to the transaction that stored a message, so the notification is sent exactly when the
change commits (never for a rolled-back one). The payload carries ids only — event kind,
origin process, user, conversation, message, creation time — never content, and stays far
below PostgreSQL's 8000-byte limit.

One LISTEN connection per process (a raw asyncpg connection, outside the engine's pool)
receives them; a notification from another process whose user has a local subscriber is
resolved by reading the message row (scoped to that user) and published on the local bus.
Other event kinds registered in :attr:`PgEventFanout.handlers` (cache invalidations, such
as a changed LLM catalog) travel the same way, their small payload included, and are handed
to the handler in every other process.

Reconnecting catches up: the listener remembers when its connection was last known alive
and, once listening again, re-reads the messages created since then (less a margin for
clock skew and for the time between a message's creation and its commit) of the users that
have local subscribers, publishing those it has not published already. Covered: message
creation (``messageAdded``), the only event kind a subscription follows across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from domain.entities import new_id
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.services.conversations import message_event
from persistence.database import Database
from persistence.repositories.conversations import _message
from persistence.session import Transaction

if TYPE_CHECKING:
    import asyncpg
from persistence.tables.conversations import messages

log = logging.getLogger("memoria.events")

CHANNEL = "memoria_events"
APPLICATION_NAME = "memoria-events"  # names the LISTEN connection in pg_stat_activity
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_REMEMBERED = 10_000  # message ids already published here, for catch-up to skip
_CATCH_UP_ROWS = 1_000

Publish = Callable[[list[DomainEvent]], Awaitable[None]]


class PgEventFanout:
    """Sends this process's committed message events to the others and publishes theirs
    on the local bus (see the module docstring for what a reconnect catches up)."""

    def __init__(
        self,
        db: Database,
        *,
        publish: Publish,
        subscribed_users: Callable[[], Collection[str]],
        health_interval: float = 5.0,
        catch_up_margin: timedelta = timedelta(seconds=60),
    ) -> None:
        self.origin = new_id()  # this process; its own notifications are ignored
        self._db = db
        self._publish = publish
        self._subscribed_users = subscribed_users
        self._health_interval = health_interval
        self._margin = catch_up_margin
        self._published: OrderedDict[str, None] = OrderedDict()
        self._inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        self._alive_at: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()  # set while a LISTEN connection is up
        # Other channels this process listens to on the same connection, and what to run
        # once listening again (a reconnect may have missed notifications).
        self.channels: dict[str, Callable[[str], None]] = {}
        self.on_listening: list[Callable[[], Awaitable[None]]] = []
        # Event kinds whose committed events every other process hands to a local handler
        # (their payload is sent as is: ids and flags only, see LLM_CATALOG_CHANGED).
        self.handlers: dict[str, Callable[[DomainEvent], None]] = {}
        self.reconnects = 0

    # -- sending (hooks on Database) ---------------------------------------------------

    async def notify(self, tx: Transaction, events: list[DomainEvent]) -> None:
        """``before_commit`` hook: queue one notification per created message."""
        for event in events:
            note: dict[str, Any] = {"o": self.origin, "k": event.name, "u": event.user_id}
            if event.name == MESSAGE_CREATED:
                note["c"] = event.payload.get("conversation_id")
                note["m"] = event.payload.get("id")
            elif event.name in self.handlers:
                note["p"] = event.payload
            else:
                continue
            await tx.read(_NOTIFY, {"channel": CHANNEL, "payload": json.dumps(note)})

    async def remember(self, events: list[DomainEvent]) -> None:
        """``after_commit`` hook: local messages were published here already."""
        for event in events:
            if event.name == MESSAGE_CREATED:
                self._mark(str(event.payload.get("id")))

    # -- receiving ---------------------------------------------------------------------

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="event-fanout-listen"),
                asyncio.create_task(self._deliver(), name="event-fanout-deliver"),
            ]

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        # Imported here: asyncpg is the `postgres` extra, and SQLite mode imports this module.
        import asyncpg

        engine = self._db.engine
        _args, params = engine.dialect.create_connect_args(engine.url)
        pause = 0.2
        while True:
            try:
                conn: asyncpg.Connection[Any] = await asyncpg.connect(
                    **params, server_settings={"application_name": APPLICATION_NAME}
                )
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("event fan-out: cannot connect (%s), retrying", type(exc).__name__)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.2
            try:
                await self._listen_on(conn)
            except Exception:  # whatever broke the connection, the listener must go on
                log.warning("event fan-out: listen connection lost, reconnecting", exc_info=True)
            finally:
                self.listening.clear()
                conn.terminate()
            self.reconnects += 1

    async def _listen_on(self, conn: asyncpg.Connection[Any]) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        started = datetime.now(UTC)
        await conn.add_listener(CHANNEL, self._received)
        for channel, callback in self.channels.items():
            await conn.add_listener(channel, _payload_to(callback))
        for listening in self.on_listening:
            await listening()
        if self._alive_at is not None:
            await self._catch_up(self._alive_at - self._margin)
        self._alive_at = started
        self.listening.set()
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for loses a cancellation that
        # arrives as its awaitable completes, and the listener then never stopped (aclose
        # waited on it for ever: an intermittent hang of the tests that close a listener).
        while not lost.is_set():
            checked = datetime.now(UTC)
            async with asyncio.timeout(self._health_interval):
                await conn.fetchval("SELECT 1")
            self._alive_at = checked  # everything committed before this reached us
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_interval):
                    await lost.wait()

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._inbox.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("event fan-out: inbox full, a notification was dropped")

    async def _deliver(self) -> None:
        """One consumer, so remote messages reach subscribers in notification order."""
        while True:
            payload = await self._inbox.get()
            try:
                await self._deliver_one(payload)
            except Exception:  # one bad notification must not stop the fan-out
                log.exception("event fan-out: a notification could not be delivered")

    async def _deliver_one(self, payload: str) -> None:
        note = json.loads(payload)
        if not isinstance(note, dict) or note.get("o") == self.origin:
            return
        handler = self.handlers.get(str(note.get("k")))
        if handler is not None:
            carried = note.get("p")
            handler(
                DomainEvent(
                    str(note["k"]),
                    user_id=str(note.get("u")),
                    at=datetime.now(UTC),
                    payload=carried if isinstance(carried, dict) else {},
                )
            )
            return
        if note.get("k") != MESSAGE_CREATED:
            return
        user_id, message_id = str(note.get("u")), str(note.get("m"))
        if user_id not in self._subscribed_users() or message_id in self._published:
            return
        async with self._db.unit_of_work() as uow:
            message = await uow.messages.get(message_id, user_id=user_id)
        if message is not None:
            self._mark(message.id)
            await self._publish([message_event(message)])

    async def _catch_up(self, since: datetime) -> None:
        users = list(self._subscribed_users())
        if not users:
            return
        stmt = (
            select(messages)
            .where(messages.c.user_id.in_(users), messages.c.created_at >= since)
            .order_by(messages.c.created_at, messages.c.id)
            .limit(_CATCH_UP_ROWS)
        )
        async with self._db.engine.connect() as conn:
            rows = list(await conn.execute(stmt))
        missed = [_message(row) for row in rows if row.id not in self._published]
        for message in missed:
            self._mark(message.id)
        if missed:
            log.info("event fan-out: caught up %d message(s) after reconnecting", len(missed))
            await self._publish([message_event(m) for m in missed])

    def _mark(self, message_id: str) -> None:
        self._published[message_id] = None
        if len(self._published) > _REMEMBERED:
            self._published.popitem(last=False)


def _payload_to(callback: Callable[[str], None]) -> Callable[[object, int, str, str], None]:
    def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        callback(payload)

    return received
