"""``memoria doctor``: the checks that say whether a deployment is healthy, and if not, why.

Every check reads; none writes or creates anything (a missing database file is reported,
not made). Each yields one :class:`Finding`. FAIL means the server cannot work properly as
things are (unreachable database, schema behind, embedder broken, secrets readable by
others, disk nearly full); WARN means it works but something deserves a look (fields still
to be re-embedded, vector index files out of step with the rows, which the server repairs).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from memoria.backup import sqlite_file
from memoria.cli.revisions import current_revision, describe_gap, head_revision
from memoria.runtime import make_embedder
from memoria.settings import Settings
from persistence.database import Database
from persistence.tables.accounts import users
from persistence.tables.memories import memories, memory_fields

Status = Literal["ok", "WARN", "FAIL"]

# Below this much free space in the data directory, writes (and SQLite's WAL) may fail soon.
DISK_FAIL_BYTES = 256 * 1024 * 1024
DISK_WARN_BYTES = 2 * 1024 * 1024 * 1024
DATABASE_TIMEOUT_SECONDS = 10.0
EMBEDDER_TIMEOUT_SECONDS = 60.0
SHOWN = 5  # names listed in one line before "and N more"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.check}: {self.detail}"


def _names(items: list[str], total: int) -> str:
    more = f" and {total - len(items)} more" if total > len(items) else ""
    return ", ".join(items) + more


class Doctor:
    """Runs the checks in order; a database that cannot be reached skips those needing it."""

    def __init__(
        self, settings: Settings, *, report: Callable[[Finding], None] | None = None
    ) -> None:
        self.settings = settings
        self.findings: list[Finding] = []
        self._report = report

    def _add(self, check: str, status: Status, detail: str) -> None:
        finding = Finding(check, status, detail)
        self.findings.append(finding)
        if self._report is not None:
            self._report(finding)  # as each check ends: the embedder's may take a while

    @property
    def healthy(self) -> bool:
        return all(f.status != "FAIL" for f in self.findings)

    async def run(self) -> list[Finding]:
        db = await self._database()
        if db is not None:
            try:
                await self._migrations(db.engine)
                await self._embedder(db.engine)
                await self._vector_files(db.engine)
            finally:
                await db.dispose()
        else:
            for check in ("migrations", "embedder", "vector index"):
                self._add(check, "WARN", "not checked: no database to compare with")
        self._secret_files()
        self._disk()
        return self.findings

    def _sqlite_path(self) -> Path | None:
        if not self.settings.is_sqlite:
            return None
        return sqlite_file(self.settings.resolved_database_url)

    async def _database(self) -> Database | None:
        path = self._sqlite_path()
        if path is not None and not path.is_file():
            self._add(
                "database",
                "FAIL",
                f"{path} does not exist (`memoria migrate` or `memoria serve` creates it)",
            )
            return None
        db = Database(self.settings.resolved_database_url)
        url = make_url(self.settings.resolved_database_url)
        kind = f"SQLite {path}" if path is not None else f"PostgreSQL {url.render_as_string()}"
        try:
            await asyncio.wait_for(db.ping(), DATABASE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001  # whatever the failure, it is this finding
            await db.dispose()
            self._add("database", "FAIL", f"{kind} unreachable: {type(exc).__name__}: {exc}")
            return None
        self._add("database", "ok", f"{kind} reachable")
        return db

    async def _migrations(self, engine: AsyncEngine) -> None:
        current, head = await current_revision(engine), head_revision()
        gap = describe_gap(current, head)
        if gap is None:
            self._add("migrations", "ok", f"at head {head}")
        else:
            self._add("migrations", "FAIL", f"{gap}: run `memoria migrate`")

    async def _embedder(self, engine: AsyncEngine) -> None:
        try:
            embedder = make_embedder(self.settings)
        except Exception as exc:  # noqa: BLE001  # a missing model package, a bad config
            self._add("embedder", "FAIL", f"{self.settings.embedder}: {exc}")
            return
        try:
            detect: Callable[[], Awaitable[object]] | None = getattr(embedder, "detect", None)
            if detect is not None:
                await asyncio.wait_for(detect(), EMBEDDER_TIMEOUT_SECONDS)
            vectors = await asyncio.wait_for(
                embedder.embed(["memoria doctor"]), EMBEDDER_TIMEOUT_SECONDS
            )
            name, dimension = embedder.name, embedder.dimension
            length = len(vectors[0])
            norm = float(np.linalg.norm(np.asarray(vectors[0], dtype=np.float32)))
        except Exception as exc:  # noqa: BLE001  # unreachable endpoint, broken weights...
            self._add("embedder", "FAIL", f"{self.settings.embedder} does not embed: {exc}")
            return
        finally:
            await _close(embedder)
        if length != dimension or abs(norm - 1.0) > 1e-3:
            self._add(
                "embedder",
                "FAIL",
                f"{name} returned a {length}-dimensional vector of norm {norm:.3f} "
                f"(expected {dimension}, unit length)",
            )
            return
        await self._fields_match(engine, name, dimension)

    async def _fields_match(self, engine: AsyncEngine, name: str, dimension: int) -> None:
        f = memory_fields.c
        stale = (f.embedder != name) | (f.dimension != dimension)
        async with engine.connect() as conn:
            total = int(
                (await conn.execute(select(func.count()).select_from(memory_fields))).scalar_one()
            )
            count = int(
                (
                    await conn.execute(select(func.count()).select_from(memory_fields).where(stale))
                ).scalar_one()
            )
            rows = (
                await conn.execute(
                    select(users.c.username, f.name, f.embedder, f.dimension)
                    .join(users, users.c.id == f.user_id)
                    .where(stale)
                    .order_by(users.c.username, f.name)
                    .limit(SHOWN)
                )
            ).all()
        if not count:
            held = f"all {total} fields embedded by it" if total else "no memory fields yet"
            self._add("embedder", "ok", f"{name} ({dimension} dimensions) loads; {held}")
            return
        listed = [f"{r.username}/{r.name} ({r.embedder}, {r.dimension})" for r in rows]
        self._add(
            "embedder",
            "WARN",
            f"{name} ({dimension} dimensions) loads, but {count} of {total} fields were embedded "
            f"by another: {_names(listed, count)}; the server re-embeds them at start-up "
            f"and searches them lexically until then",
        )

    async def _vector_files(self, engine: AsyncEngine) -> None:
        if not self.settings.is_sqlite:
            self._add("vector index", "ok", "pgvector inside PostgreSQL: no index files")
            return
        directory = self.settings.data_dir / "vectors"
        files = sorted(directory.glob("*.faiss")) if directory.is_dir() else []
        if not files:
            self._add("vector index", "ok", "no index files yet (built on first search)")
            return
        c = memories.c
        async with engine.connect() as conn:
            counts: dict[str, int] = dict(
                (await conn.execute(select(c.field_id, func.count()).group_by(c.field_id))).all()
            )
            fields = {r[0] for r in await conn.execute(select(memory_fields.c.id))}
        problems: list[str] = []
        for path in files:
            field_id = path.stem
            saved = _saved_count(path.with_suffix(".ids"))
            if field_id not in fields:
                problems.append(f"{path.name} belongs to no field (deleted): safe to remove")
            elif saved is None:
                problems.append(f"{path.name} has no readable id map: rebuilt on next load")
            elif saved != counts.get(field_id, 0):
                problems.append(
                    f"{path.name} holds {saved} vectors, the field {counts.get(field_id, 0)} "
                    f"rows: caught up on next load (normal while the server is writing)"
                )
        if problems:
            self._add("vector index", "WARN", _names(problems[:SHOWN], len(problems)))
        else:
            self._add("vector index", "ok", f"{len(files)} index files match their fields' rows")

    def _secret_files(self) -> None:
        data = self.settings.data_dir
        candidates: list[tuple[str, Path, bool]] = [
            ("jwt_secret", data / "jwt_secret", self.settings.jwt_secret is not None),
            ("encryption.key", data / "encryption.key", self.settings.encryption_key is not None),
        ]
        database = self._sqlite_path()
        if database is not None:
            for suffix in ("", "-wal", "-shm"):
                file = database.with_name(database.name + suffix)
                candidates.append((file.name, file, bool(suffix)))
        loose: list[str] = []
        missing: list[str] = []
        for label, path, optional in candidates:
            if not path.exists():
                if not optional:
                    missing.append(label)
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                loose.append(f"{path} is {mode:04o} (run: chmod 600 {path})")
        if loose:
            self._add("file modes", "FAIL", f"readable by others: {'; '.join(loose)}")
        elif missing:
            self._add(
                "file modes",
                "WARN",
                f"{', '.join(missing)} missing from {data}: the server creates new ones at start, "
                "and data encrypted with a lost encryption.key cannot be read",
            )
        else:
            self._add("file modes", "ok", "secrets and database files are 0600")

    def _disk(self) -> None:
        where = self.settings.data_dir
        while not where.exists() and where != where.parent:
            where = where.parent
        usage = shutil.disk_usage(where)
        free = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB in {where}"
        if usage.free < DISK_FAIL_BYTES:
            self._add("disk", "FAIL", free)
        elif usage.free < DISK_WARN_BYTES:
            self._add("disk", "WARN", free)
        else:
            self._add("disk", "ok", free)


def _saved_count(ids_file: Path) -> int | None:
    """How many vectors an index file was saved with: the length of its id map."""
    try:
        with ids_file.open("rb") as handle:
            return len(np.load(handle))
    except (OSError, ValueError):
        return None


async def _close(embedder: object) -> None:
    close = getattr(embedder, "close", None)
    if close is None:
        return
    with contextlib.suppress(Exception):
        result = close()
        if inspect.isawaitable(result):
            await result
