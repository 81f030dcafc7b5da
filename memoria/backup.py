"""Backups of the database: SQLite copied online, PostgreSQL handed to ``pg_dump``.

SQLite is copied with its online backup API in a single step: one read transaction, so the
copy is a consistent snapshot even while the server keeps writing (WAL lets the writer go
on meanwhile). The copy is written 0600 beside its destination, checked, switched out of
WAL mode (one self-contained file) and renamed into place, so a failed backup never leaves
a half-written file under the requested name. PostgreSQL is backed up by ``pg_dump``; Memoria
prints the command rather than running it, since the tool and its version belong to the
database's host, and the password is never printed.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """The backup could not be made; nothing was left under the destination's name."""


@dataclass(frozen=True)
class SqliteBackup:
    path: Path
    size_bytes: int
    users: int
    memories: int


def sqlite_file(database_url: str) -> Path:
    """The database file of a ``sqlite+aiosqlite:///`` URL."""
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(database)


def destination(target: Path, *, now: datetime | None = None) -> Path:
    """``target`` itself, or a timestamped file inside it when it is a directory."""
    if target.is_dir():
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
        return target / f"memoria-{stamp}.db"
    return target


def backup_sqlite(source: Path, target: Path, *, overwrite: bool = False) -> SqliteBackup:
    if not source.is_file():
        raise BackupError(f"database file {source} does not exist")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists (pass --force to replace it)")
    if not target.parent.is_dir():
        raise BackupError(f"directory {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    # Created 0600 before SQLite writes a byte: the copy holds everything the database does.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        counts = _copy(source, partial)
        _fsync(partial)
        partial.replace(target)
        _fsync(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return SqliteBackup(target, target.stat().st_size, *counts)


def _copy(source: Path, partial: Path) -> tuple[int, int]:
    # mode=rw: never create a database that is not there. The busy timeout covers a
    # checkpoint holding the file when the snapshot starts.
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=-1)  # one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal beside it
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            return _count(dst, "users"), _count(dst, "memories")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup failed: {exc}") from None
    finally:
        src.close()


def _count(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608  # fixed table names
    except sqlite3.OperationalError:
        return 0  # a database not migrated yet


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


PASSWORD_PLACEHOLDER = "<password from DATABASE_URL>"  # noqa: S105  # a placeholder, not a password


def pg_dump_command(database_url: str, target: Path) -> str:
    """The ``pg_dump`` call that backs up the database of ``database_url`` into ``target``
    (custom format, restore with ``pg_restore``). The password becomes a placeholder."""
    url = make_url(database_url)
    host = url.query.get("host") or url.host  # ?host=/socket/dir for a Unix socket
    if isinstance(host, tuple):
        host = host[0]
    args = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}"]
    if host:
        args.append(f"--host={host}")
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--username={url.username}")
    args.append(f"--dbname={url.database or 'postgres'}")
    command = shlex.join(args)
    if url.password:
        command = f"PGPASSWORD='{PASSWORD_PLACEHOLDER}' {command}"
    return command
