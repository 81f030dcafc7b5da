"""Engine set-up and the SQL unit of work for both storage modes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import ColumnElement, event, func, text, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from domain.entities import new_id
from domain.events import DomainEvent
from domain.ports import UnitOfWork
from persistence.copied_vectors import CopiedVectorIndex
from persistence.faiss_index import FaissStore, FaissVectorIndex
from persistence.field_cache import (
    FIELDS_CHANGED,
    FieldCache,
    changed_fields_payload,
    fields_named,
)
from persistence.field_store import DEFAULT_BUDGET
from persistence.index_journal import IndexJournal
from persistence.lexical_index import FieldSizes, SqliteLexicalIndex
from persistence.memory_changes import MEMORIES_CHANGED, VECTOR_SEARCHES, MemoryFeed, change_notes
from persistence.outbox import SubscriptionCache
from persistence.pg_lexical_index import PgLexicalIndex
from persistence.pgvector_index import CONNECTION_SETTINGS as PG_CONNECTION_SETTINGS
from persistence.pgvector_index import PgVectorIndex
from persistence.repositories.blobs import SqlBlobRepository
from persistence.repositories.conversations import (
    SqlAttachmentRepository,
    SqlConversationRepository,
    SqlMessageRepository,
)
from persistence.repositories.fields import SqlMemoryFieldRepository
from persistence.repositories.jobs import SqlJobRepository
from persistence.repositories.llm import SqlLlmCatalogRepository, SqlSpendRepository
from persistence.repositories.maintenance import SqlMaintenanceRepository
from persistence.repositories.memories import SqlMemoryHistoryRepository, SqlMemoryRepository
from persistence.repositories.mfa import SqlMfaRepository
from persistence.repositories.patterns import SqlPatternRepository
from persistence.repositories.sources import SqlSourceRepository
from persistence.repositories.stats import SqlStatsQuery
from persistence.repositories.usage import SqlUsageReader
from persistence.repositories.users import SqlApiKeyRepository, SqlUserRepository
from persistence.repositories.webhooks import SqlWebhookRepository
from persistence.session import BesideReads, Transaction
from persistence.sqlite_driver import BatchingTransaction, batching_transaction, one_trip_dbapi
from persistence.tables.memories import memories
from persistence.term_store import TermStore
from persistence.turn_store import TurnStore
from persistence.types import SentVector


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable across app crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Up to 64 MiB of pages per connection (SQLite's default is 2 MiB): a search over 20k
    # turns reads a ~50 MB memories table; 20k LoCoMo turns as EPISODE, p50 31.3 -> 26.8 ms
    # and p99 61.6 -> 47.7 ms in alternating runs (docs/BENCHMARKS.md). Pages are taken as
    # they are read, so a small database costs no more than before.
    cursor.execute("PRAGMA cache_size=-65536")
    # Reads through a memory map of up to 1 GiB (address space; the pages are the OS's file
    # cache, shared by every connection): the keyword ranking reads each match's row, and at
    # 100k turns (a 200 MB table) those reads no longer fit the page cache. 100k LoCoMo turns
    # as EPISODE, alternating runs: p50 38.1 / 41.7 -> 32.6 / 31.5 ms, p99 104.6 / 147.2 ->
    # 83.7 / 87.2 ms; 20k: the same within noise (docs/BENCHMARKS.md).
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


# The planner's price of a random page read, for our connections when the server keeps
# PostgreSQL's default (4, for spinning disks): our reads come from cache or SSD. At 4 the
# keyword ranking of a 4,000-turn field scanned the whole table to test every row's words
# (4.0-4.5 ms) instead of reading the matches through the GIN index (0.9-1.0 ms); the
# statement took 8.2 instead of 4.9 ms a search. An operator's own setting is kept.
_RANDOM_PAGE_COST = "1.1"

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_NOTIFY_EACH = text("SELECT pg_notify(:channel, note) FROM unnest(CAST(:notes AS text[])) AS note")
# How long a process keeps a field's size, term counts and vector plan (PostgreSQL): only a
# bound for a process that stopped hearing notifications without noticing it yet.
FIELD_FACTS_SECONDS = 60.0


def _pg_planner_costs(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("SELECT source FROM pg_settings WHERE name = 'random_page_cost'")
    (source,) = cursor.fetchone()
    if source == "default":
        cursor.execute(f"SET random_page_cost = {_RANDOM_PAGE_COST}")
    cursor.close()


# Connections for reads beside a search's own (PostgreSQL), per process. One: a search that
# finds it taken reads on its own connection, after the vector search. On 2 cores, 100k
# LoCoMo turns, one client p50 57.8 -> 54.3 ms; with 8 clients every search beside cost
# throughput (21.6 against 24.0 searches/s: two backends per search compete for the cores),
# one slot did not (23.4 against 23.7).
BESIDE_SLOTS = 1


class Database:
    """Owns the engine and, in embedded mode, the FAISS store; hands out units of work."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        index_dir: Path | None = None,
        search_index_entries: int = DEFAULT_BUDGET,
        vector_index_entries: int = 0,
        vector_search: str = "process",
    ) -> None:
        if vector_search not in VECTOR_SEARCHES:
            raise ValueError(f"vector_search must be one of {', '.join(VECTOR_SEARCHES)}")
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        # SQLite has one writer: serialising writers in-process avoids SQLITE_BUSY retries.
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
            if url.startswith("postgresql+asyncpg"):
                # pgvector's search settings for the connection's life: no statement per search.
                kwargs["connect_args"] = {"server_settings": dict(PG_CONNECTION_SETTINGS)}
        elif url.startswith("sqlite+aiosqlite"):
            # One driver-thread round trip per statement, inserts queued until the statement
            # or COMMIT that follows them, and the write lock taken by the driver around the
            # write transaction only (see persistence/sqlite_driver.py).
            kwargs.update(module=one_trip_dbapi(self.write_lock))
        # Whether connections open with pgvector's search settings (see PgVectorIndex).
        self.pg_search_preset = "connect_args" in kwargs
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine.sync_engine, "connect", _pg_planner_costs)
        # Short transactions a request makes beside its own (shared rate-limit and sign-in
        # counters) come from a pool of their own: taken from the request pool, requests
        # holding every connection would each wait for one more, and none would finish.
        self.side_engine: AsyncEngine = (
            self.engine
            if self.is_sqlite
            else create_async_engine(
                url, echo=echo, pool_size=2, max_overflow=8, pool_pre_ping=True
            )
        )
        # PostgreSQL: reads a read-only search makes beside its own connection's statements
        # (persistence/session.py); their connections are set up as the request pool's.
        self.beside: BesideReads | None = None
        if not self.is_sqlite:
            beside_engine = create_async_engine(
                url, **{**kwargs, "pool_size": BESIDE_SLOTS, "max_overflow": 0}
            )
            event.listen(beside_engine.sync_engine, "connect", _pg_planner_costs)
            self.beside = BesideReads(beside_engine, BESIDE_SLOTS)
        # Vector index files (embedded mode) are a cache of the database, kept in index_dir.
        # PostgreSQL: copies in this process's memory only, kept in step by the others'
        # notes (self.memory_feed), or none (pgvector).
        copies = self.is_sqlite or vector_search == "process"
        self.faiss: FaissStore | None = None
        if self.is_sqlite:
            self.faiss = FaissStore(self.engine, index_dir, budget=vector_index_entries)
        elif copies:
            sent: ColumnElement[Any] = type_coerce(
                func.vector_send(memories.c.embedding), SentVector()
            )
            self.faiss = FaissStore(self.engine, None, vectors=sent, budget=vector_index_entries)
        # The webhook outbox's subscription lookups (embedded mode, see persistence/outbox.py).
        self.subscriptions = SubscriptionCache()
        # Field sizes for FTS5's local-IDF decision (see persistence/lexical_index.py), and
        # large fields' keyword postings (persistence/term_store.py; PostgreSQL: beside the
        # vector copies, on the same terms).
        self.field_sizes = FieldSizes()
        budget = search_index_entries  # per store (memoria.settings: MEMORIA_SEARCH_INDEX_ENTRIES)
        self.terms: TermStore | None = TermStore(self.engine, budget=budget) if copies else None
        # Fields' turn orders for a search's conversation context (persistence/turn_store.py).
        self.turns: TurnStore | None = TurnStore(self.engine, budget=budget) if copies else None
        self.memory_feed: MemoryFeed | None = None
        if not self.is_sqlite and self.faiss is not None:
            self.memory_feed = MemoryFeed(
                self.engine, self.faiss, origin=new_id(), terms=self.terms, turns=self.turns
            )
        # PostgreSQL: which fields pgvector reads exactly rather than through HNSW, and
        # fields' sizes and terms' document counts for keyword IDF (persistence/field_cache.py).
        # A write drops them in every process (FIELDS_CHANGED), so they may be kept longer
        # than the reads they save would otherwise allow.
        self.vector_paths = FieldCache[bool](ttl=FIELD_FACTS_SECONDS)
        self.field_rows = FieldCache[int](ttl=FIELD_FACTS_SECONDS)
        self.term_counts = FieldCache[dict[str, int]](ttl=FIELD_FACTS_SECONDS)
        # Run inside the transaction just before commit (e.g. the webhook outbox writer).
        self.before_commit: list[Callable[[Transaction, list[DomainEvent]], Awaitable[None]]] = []
        # Run after a successful commit (e.g. the in-process event bus for subscriptions).
        self.after_commit: list[Callable[[list[DomainEvent]], Awaitable[None]]] = []

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self)

    def forget_fields(self, field_ids: Collection[str] | None) -> None:
        """Drop what is kept of these fields (None: of every field) in the per-field caches:
        their memories changed, here or in another process."""
        for cache in (self.vector_paths, self.field_rows, self.term_counts):
            if field_ids is None:
                cache.clear()
            else:
                cache.forget(field_ids)

    def fields_changed(self, payload: str) -> None:
        """Another process's ``FIELDS_CHANGED`` notification (see the event fan-out)."""
        self.forget_fields(fields_named(payload))

    async def listening_again(self) -> None:
        """The notification connection is back: what it missed is unknown."""
        self.forget_fields(None)
        if self.memory_feed is not None and self.faiss is not None:
            self.faiss.forget_all()
            for store in (self.terms, self.turns):
                if store is not None:
                    store.forget_all()

    @property
    def copies_in_step(self) -> bool:
        """Whether this process's in-memory copies (vectors, keyword postings) follow every
        committed write, so units of work may search them: always in embedded mode; in
        PostgreSQL mode while it hears the other processes' writes."""
        if self.memory_feed is not None:
            return self.memory_feed.listening()
        return self.faiss is not None

    __call__ = unit_of_work

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        if self.terms is not None:
            await self.terms.close()
        if self.turns is not None:
            await self.turns.close()
        if self.memory_feed is not None:
            await self.memory_feed.aclose()
        if self.faiss is not None:
            await self.faiss.close()
        await self.engine.dispose()
        if self.side_engine is not self.engine:
            await self.side_engine.dispose()
        if self.beside is not None:
            await self.beside.engine.dispose()


class SqlUnitOfWork(UnitOfWork):
    """One connection and transaction; ``commit`` publishes vector changes afterwards.

    It names the domain's ``UnitOfWork`` port as its base, so each repository assigned in
    ``__aenter__`` is checked against the port's member type."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None
        self._tx: Transaction | None = None
        self._journal = IndexJournal()
        self._events: list[DomainEvent] = []

    def record(self, event: DomainEvent) -> None:
        self._events.append(event)

    async def __aenter__(self) -> SqlUnitOfWork:
        self._conn = await self._db.engine.connect()
        await self._conn.begin()
        batching = await batching_transaction(self._conn) if self._db.is_sqlite else None
        if batching is not None:
            batching.caches = self._db.subscriptions
        tx = self._tx = batching or Transaction(self._conn, self._db.write_lock)
        self.users = SqlUserRepository(tx, self._journal)
        self.api_keys = SqlApiKeyRepository(tx)
        self.fields = SqlMemoryFieldRepository(tx)
        turns = self._db.turns if self._db.copies_in_step else None
        self.memories = self.memory_query = SqlMemoryRepository(tx, self._journal, turns)
        self.history = SqlMemoryHistoryRepository(tx)
        self.conversations = SqlConversationRepository(tx)
        self.messages = SqlMessageRepository(tx)
        self.attachments = SqlAttachmentRepository(tx)
        # Patterns, webhooks, data sources, statistics.
        self.patterns = SqlPatternRepository(tx)
        self.webhooks = SqlWebhookRepository(tx)
        self.sources = SqlSourceRepository(tx)
        self.stats = SqlStatsQuery(tx)
        self.llm = SqlLlmCatalogRepository(tx)
        self.spend = SqlSpendRepository(tx)
        # Quota counts, TOTP state, uploaded attachment bytes.
        self.usage = SqlUsageReader(tx)
        self.mfa = SqlMfaRepository(tx)
        self.blobs = SqlBlobRepository(tx)
        self.maintenance = SqlMaintenanceRepository(tx, self._journal)
        self.jobs = SqlJobRepository(tx)
        self.vectors: FaissVectorIndex | CopiedVectorIndex | PgVectorIndex
        faiss = self._db.faiss
        if faiss is not None and self._db.is_sqlite:
            self.vectors = FaissVectorIndex(faiss)
        else:
            database = PgVectorIndex(
                tx, preset=self._db.pg_search_preset, paths=self._db.vector_paths
            )
            if faiss is not None and self._db.copies_in_step:
                self.vectors = CopiedVectorIndex(faiss, database)
            else:
                self.vectors = database
        self.lexical = (
            SqliteLexicalIndex(tx, self._db.field_sizes, self._db.terms)
            if self._db.is_sqlite
            else PgLexicalIndex(
                tx,
                self._db.field_rows,
                beside=self._db.beside,
                counts=self._db.term_counts,
                terms=self._db.terms if self._db.copies_in_step else None,
                wrote_memories=self._journal.changed_fields,
            )
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def commit(self) -> None:
        assert self._conn is not None
        assert self._tx is not None
        events, self._events = self._events, []
        changed = self._journal.changed_fields()
        try:
            if events:
                for hook in self._db.before_commit:
                    await hook(self._tx, events)
            if changed and not self._db.is_sqlite:
                # Sent when the transaction commits, and only then.
                payload = changed_fields_payload(changed)
                await self._tx.read(_NOTIFY, {"channel": FIELDS_CHANGED, "payload": payload})
            feed = self._db.memory_feed
            if feed is not None:
                journal = self._journal
                turned = [(field_id, change[0]) for field_id, change in journal.turns]
                notes = change_notes(
                    feed.origin, journal.upserts, journal.deletes, journal.dropped, turned
                )
                if notes:
                    await self._tx.read(_NOTIFY_EACH, {"channel": MEMORIES_CHANGED, "notes": notes})
            await self._conn.commit()
        finally:
            self._tx.release()
        self._end_writes()
        upserts, deletes = list(self._journal.upserts), list(self._journal.deletes)
        texts, turns = list(self._journal.texts), list(self._journal.turns)
        dropped = list(self._journal.dropped)
        self._journal.clear()
        if self._db.terms is not None and (texts or deletes):
            self._db.terms.apply_texts(texts, deletes)
        if self._db.turns is not None and turns:
            self._db.turns.apply(turns)
        for field_id in dropped:  # re-embedded or deleted: built again if searched again
            if self._db.faiss is not None:
                self._db.faiss.forget(field_id)
            for store in (self._db.terms, self._db.turns):
                if store is not None:
                    store.forget(field_id)
        if self._db.faiss is not None and (upserts or deletes):
            await self._db.faiss.apply(upserts, deletes)
        if changed and not self._db.is_sqlite:  # the fields' sizes or words changed
            self._db.forget_fields(changed)
        for listener in self._db.after_commit if events else ():
            await listener(events)

    def _end_writes(self) -> None:
        """The transaction ended: caches of what it wrote are dropped (persistence/outbox.py)."""
        if isinstance(self._tx, BatchingTransaction) and self._tx.written_tables:
            self._db.subscriptions.ended(self._tx)
            if self._tx.wrote_memories:
                self._db.field_sizes.clear()
            self._tx.written_tables = set()

    async def rollback(self) -> None:
        if self._conn is None or self._tx is None:
            return
        try:
            await self._conn.rollback()
        finally:
            self._tx.release()
            self._end_writes()
            self._journal.clear()
            self._events.clear()

    async def close(self) -> None:
        if self._conn is None:
            return
        try:
            if self._conn.in_transaction():
                await self.rollback()
        finally:
            if self._tx is not None:
                self._tx.release()
                self._end_writes()
            await self._conn.close()
            self._conn = None
