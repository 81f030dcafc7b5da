"""``memoria import``: an export file into this database, streamed, in batches.

Every batch (``BATCH_SIZE`` records) is checked completely, then written in one
transaction: a bad line stops the import with its line number, and nothing of its batch is
written. Ids are kept, and a record whose id exists already is skipped, so importing a
file again changes nothing and re-running an interrupted import finishes it. Vectors are
kept when the record's embedder is the running one; otherwise the batch's texts are
embedded again. At the end each field that received memories gets its vector index built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy.exc import DBAPIError

from domain.ports import Embedder
from memoria.transfer.accounts import AccountMap
from memoria.transfer.indexes import rebuild_vector_index
from memoria.transfer.progress import progress_bar
from memoria.transfer.records import (
    BY_NAME,
    FORMAT,
    FORMAT_VERSION,
    KINDS,
    RecordError,
    RecordKind,
    decode,
    decode_vector,
)
from memoria.transfer.unit_of_work import TransferUnitOfWork
from persistence.database import Database

BATCH_SIZE = 500


class ImportFailed(Exception):
    """An import that stopped; the batches before the one named were committed."""


@dataclass
class ImportReport:
    """What an import did, per record type."""

    imported: dict[str, int] = field(default_factory=lambda: {k.name: 0 for k in KINDS})
    skipped: dict[str, int] = field(default_factory=lambda: {k.name: 0 for k in KINDS})
    reembedded: int = 0
    created_users: list[str] = field(default_factory=list)
    complete: bool = False
    index_seconds: float = 0.0  # building the touched fields' vector indexes at the end


@dataclass(frozen=True)
class _Line:
    number: int
    kind: RecordKind
    record: dict[str, Any]


def _parse(raw: bytes, number: int) -> dict[str, Any]:
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(number, f"not valid JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("type"), str):
        raise RecordError(number, 'not a record (a JSON object with a "type")')
    return record


def _check_header(record: Mapping[str, Any], number: int) -> str:
    if record.get("type") != "header" or record.get("format") != FORMAT:
        raise RecordError(
            number, f"not a Memoria export (the first line must be its {FORMAT} header)"
        )
    if record.get("version") != FORMAT_VERSION:
        raise RecordError(
            number,
            f"export format version {record.get('version')!r}; this Memoria reads {FORMAT_VERSION}",
        )
    return str(record.get("embedder") or "")


class Importer:
    """One import run; ``run`` reads the stream to its end record."""

    def __init__(
        self,
        db: Database,
        *,
        embedder: Embedder,
        renames: Mapping[str, str],
        batch_size: int = BATCH_SIZE,
        quiet: bool = False,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._accounts = AccountMap(renames=renames, embedder=embedder)
        self._batch_size = max(1, batch_size)
        self._quiet = quiet
        self._file_embedder = ""
        self._touched_fields: set[str] = set()
        self._seen = {kind.name: 0 for kind in KINDS}
        self._pending: list[tuple[str, int, int]] = []  # (type, imported, skipped) until commit
        self.report = ImportReport()

    async def run(self, stream: IO[bytes], size: int | None) -> ImportReport:
        try:
            await self._read(stream, size)
        finally:
            # Also after a failure: what the committed batches brought is searchable.
            await self._finish_fields()
        self.report.created_users = list(self._accounts.created_users)
        return self.report

    async def _read(self, stream: IO[bytes], size: int | None) -> None:
        batch: list[_Line] = []
        header = False
        with progress_bar(
            total=size, unit="B", unit_scale=True, description="import", quiet=self._quiet
        ) as bar:
            for number, raw in enumerate(stream, start=1):
                bar.update(len(raw))
                if self.report.complete:
                    raise RecordError(number, "data after the end record")
                if not raw.strip():
                    continue
                record = _parse(raw, number)
                if not header:
                    self._file_embedder = _check_header(record, number)
                    header = True
                    continue
                if record["type"] == "end":
                    self._check_counts(record, number)
                    self.report.complete = True
                    continue
                kind = BY_NAME.get(record["type"])
                if kind is None:
                    raise RecordError(number, f"unknown record type {record['type'][:40]!r}")
                self._seen[kind.name] += 1
                batch.append(_Line(number, kind, record))
                if len(batch) >= self._batch_size:
                    await self._write(batch)
                    batch = []
            if not header:
                raise RecordError(1, "the file is empty")
            await self._write(batch)

    def _check_counts(self, record: Mapping[str, Any], number: int) -> None:
        """The end record's counts against the records read: a file that lost lines in the
        middle (a bad copy) is caught here, not just one cut short."""
        counts = record.get("counts")
        if not isinstance(counts, dict):
            raise RecordError(number, "the end record lacks its counts")
        for name, seen in self._seen.items():
            if counts.get(name, 0) != seen:
                raise RecordError(
                    number,
                    f"the end record counts {counts.get(name, 0)} {name} records, "
                    f"the file holds {seen}: it is damaged",
                )

    async def _finish_fields(self) -> None:
        started = time.perf_counter()
        for field_id in sorted(self._touched_fields):
            async with TransferUnitOfWork(self._db) as uow:
                await uow.rows.raise_turn_counters(field_id)
                await uow.commit()
            await rebuild_vector_index(self._db, field_id)
        self.report.index_seconds = time.perf_counter() - started

    async def _write(self, batch: list[_Line]) -> None:
        if not batch:
            return
        span = f"lines {batch[0].number}-{batch[-1].number}"
        self._pending = []
        try:
            async with TransferUnitOfWork(self._db) as uow:
                for run in _runs(batch):
                    await self._write_run(uow, run)
                await uow.commit()
            for name, imported, skipped in self._pending:
                self.report.imported[name] += imported
                self.report.skipped[name] += skipped
        except DBAPIError as exc:
            detail = str(exc.orig or exc).splitlines()[0][:300]
            raise ImportFailed(f"{span}: the database refused this batch: {detail}") from None

    async def _write_run(self, uow: TransferUnitOfWork, run: list[_Line]) -> None:
        kind = run[0].kind
        if kind.name in ("user", "field"):
            created = 0
            for line in run:
                values = decode(kind, line.record, line.number)
                if kind.name == "user":
                    created += await self._accounts.add_user(uow, values)
                else:
                    created += await self._accounts.add_field(uow, values, line.number)
            self._pending.append((kind.name, created, len(run) - created))
            return
        rows = [self._mapped(kind, line) for line in run]
        names = [column.name for column in kind.key]
        keys = [tuple(row[name] for name in names) for row, _ in rows]
        existing = await uow.rows.existing_keys(kind.table, keys)
        fresh = [pair for pair, key in zip(rows, keys, strict=True) if key not in existing]
        if kind.name == "memory":
            await self._attach_vectors(fresh)
            self._touched_fields.update(row["field_id"] for row, _ in fresh)
        elif kind.name == "pattern" and self._file_embedder != self._embedder.name:
            await self._reembed_patterns([row for row, _ in fresh])
        await uow.rows.insert(kind.table, [row for row, _ in fresh])
        self._pending.append((kind.name, len(fresh), len(rows) - len(fresh)))

    def _mapped(self, kind: RecordKind, line: _Line) -> tuple[dict[str, Any], _Line]:
        row = decode(kind, line.record, line.number)
        row["user_id"] = self._accounts.user_id(row["user_id"], line.number)
        if kind.name == "memory":
            row["field_id"] = self._accounts.field_id(row["field_id"], line.number)
        elif kind.name == "conversation":
            # The column is nullable (SET NULL when a field is deleted): an unknown field
            # leaves the conversation without one rather than failing.
            row["field_id"] = self._accounts.known_field(row["field_id"])
        return row, line

    async def _attach_vectors(self, rows: list[tuple[dict[str, Any], _Line]]) -> None:
        """Each row's ``embedding``: the record's own vector if the running embedder made it,
        else a new one (all of the batch's in one call)."""
        stale: list[dict[str, Any]] = []
        for row, line in rows:
            vector = line.record.get("vector")
            same_model = line.record.get("embedder") == self._embedder.name
            if same_model and vector is not None:
                decoded = decode_vector(vector, line.number)
                if len(decoded) == self._embedder.dimension:
                    row["embedding"] = decoded
                    continue
            stale.append(row)
        if stale:
            vectors = await self._embedder.embed([row["content"] for row in stale])
            for row, new in zip(stale, vectors, strict=True):
                row["embedding"] = new
            self.report.reembedded += len(stale)

    async def _reembed_patterns(self, rows: Iterable[dict[str, Any]]) -> None:
        """A pattern's vector (for its semantic trigger) from another embedder is made again
        from its value (the keywords it was first made with are not stored)."""
        rows = list(rows)
        if rows:
            vectors = await self._embedder.embed([row["value"] for row in rows])
            for row, new in zip(rows, vectors, strict=True):
                row["vector"] = [round(float(x), 6) for x in new]


def _runs(batch: list[_Line]) -> Iterable[list[_Line]]:
    """Consecutive records of one type, in file order (parents before children)."""
    run: list[_Line] = []
    for line in batch:
        if run and line.kind is not run[0].kind:
            yield run
            run = []
        run.append(line)
    if run:
        yield run
