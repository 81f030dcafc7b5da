"""`memoria migrate`, `memoria backup` and `memoria doctor` on real databases: migrations
reported from and to their revisions, an online SQLite backup taken while the server writes,
the pg_dump command without the password, and a doctor that fails what is broken."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import stat
import uuid
from pathlib import Path

import pytest
from cli_support import Cli, deployment_env
from conftest import GraphQLClient, RunningServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import persistence.migrations.versions as versions
from persistence.migrate import downgrade

# The newest migration's revision (each file is named after its revision).
NEWEST = max(path.name[:4] for path in Path(versions.__file__).parent.glob("[0-9]*.py"))


def _cli(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    return Cli(deployment_env(database_url, tmp_path, default_sqlite=True), monkeypatch, capsys)


def _statuses(report: str) -> dict[str, str]:
    """{check: status} from doctor's lines, e.g. ``FAIL file modes: ...``."""
    found = {}
    for line in report.splitlines():
        status, _, rest = line.partition(" ")
        found[rest.strip().split(":")[0]] = status
    return found


def test_migrate_doctor_and_a_schema_behind(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = _cli(database_url, tmp_path, monkeypatch, capsys)
    assert f"from an empty schema to {NEWEST}" in cli.ok("migrate")
    assert f"already at the newest revision, {NEWEST}" in cli.ok("migrate")
    cli.ok("user", "create", "alice")

    healthy = cli("doctor")
    assert healthy.status == 0, healthy
    assert set(_statuses(healthy.out).values()) == {"ok"}, healthy.out
    assert set(_statuses(healthy.out)) == {
        "database",
        "migrations",
        "embedder",
        "vector index",
        "file modes",
        "disk",
    }

    url = cli.env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{cli.data_dir / 'memoria.db'}"

    async def step_back() -> None:
        engine = create_async_engine(url)
        try:
            await downgrade(engine, "0007")
        finally:
            await engine.dispose()

    asyncio.run(step_back())
    behind = cli("doctor")
    assert behind.status == 1
    assert (
        f"FAIL migrations: the database is at revision 0007, this version needs {NEWEST}"
        in behind.out
    )
    refused = cli("user", "list")
    assert refused.status == 1
    assert "run `memoria migrate` first" in refused.err
    assert f"from 0007 to {NEWEST}" in cli.ok("migrate")
    assert cli("doctor").status == 0
    assert "alice" in cli.ok("user", "list")  # data kept across the down and up


def test_doctor_fails_secrets_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = _cli("sqlite", tmp_path, monkeypatch, capsys)
    cli.ok("migrate")
    cli.ok("user", "create", "alice")  # the runtime writes jwt_secret and encryption.key
    for name in ("jwt_secret", "encryption.key", "memoria.db"):
        assert stat.S_IMODE((cli.data_dir / name).stat().st_mode) == 0o600
    (cli.data_dir / "jwt_secret").chmod(0o644)
    report = cli("doctor")
    assert report.status == 1
    line = next(x for x in report.out.splitlines() if x.startswith("FAIL file modes"))
    assert "jwt_secret is 0644" in line
    assert (cli.data_dir / "jwt_secret").read_text().strip() not in report.out


def test_doctor_names_fields_of_another_embedder(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = _cli(database_url, tmp_path, monkeypatch, capsys)
    cli.ok("migrate")
    cli.ok("user", "create", "alice")
    url = cli.env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{cli.data_dir / 'memoria.db'}"

    async def field_from_an_older_model() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO memory_fields (id, user_id, name, embedder, dimension, "
                        "created_at, turn_seq_next, session_seq_next) SELECT :id, id, 'notes', "
                        "'old-model', 768, created_at, 0, 0 FROM users WHERE username = 'alice'"
                    ),
                    {"id": str(uuid.uuid4())},
                )
        finally:
            await engine.dispose()

    asyncio.run(field_from_an_older_model())
    report = cli("doctor")
    assert report.status == 0  # a warning: the server re-embeds such fields itself
    line = next(x for x in report.out.splitlines() if "embedder:" in x)
    assert line.startswith("WARN")
    assert "alice/notes (old-model, 768)" in line
    assert cli("doctor", "--strict").status == 1


def test_doctor_fails_an_unreachable_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-socket-dir"
    url = f"postgresql+asyncpg://memoria:db-password-9@/memoria?host={missing}"
    cli = Cli(deployment_env(url, tmp_path, default_sqlite=False), monkeypatch, capsys)
    report = cli("doctor")
    assert report.status == 1
    first = report.out.splitlines()[0]
    assert first.startswith("FAIL database: PostgreSQL postgresql+asyncpg://memoria:***@")
    assert "unreachable" in first
    assert "db-password-9" not in report.out + report.err

    sqlite_cli = _cli("sqlite", tmp_path / "other", monkeypatch, capsys)
    report = sqlite_cli("doctor")
    assert report.status == 1
    assert "memoria.db does not exist" in report.out
    assert not (sqlite_cli.data_dir / "memoria.db").exists()  # doctor never creates it


def test_pg_backup_prints_pg_dump_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://memo:s3cr3t-pw@db.internal:5433/memoria"
    cli = Cli(deployment_env(url, tmp_path, default_sqlite=False), monkeypatch, capsys)
    result = cli("backup", str(tmp_path / "memoria.dump"))
    assert result.status == 0
    assert "s3cr3t-pw" not in result.out + result.err
    command = result.out.strip()
    assert command.startswith("PGPASSWORD='<password from DATABASE_URL>' pg_dump ")
    for part in ("--host=db.internal", "--port=5433", "--username=memo", "--dbname=memoria"):
        assert part in command
    assert f"--file={tmp_path / 'memoria.dump'}" in command


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_backup_while_the_server_writes(
    server: RunningServer,
    gql: GraphQLClient,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = Cli(deployment_env(database_url, tmp_path, default_sqlite=False), monkeypatch, capsys)
    user = await gql.register("writer")
    field = (await user.data('mutation { createMemoryField(name: "log") { id } }'))[
        "createMemoryField"
    ]["id"]
    add = "mutation($f: ID!, $i: [MemoryInput!]!) { addMemories(fieldId: $f, inputs: $i) { id } }"
    await user.data(add, {"f": field, "i": [{"content": f"baseline fact {n}"} for n in range(40)]})

    written = 0
    stop, underway = asyncio.Event(), asyncio.Event()

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            batch = [
                {"content": f"note {written + n} written during the backup"} for n in range(10)
            ]
            await user.data(add, {"f": field, "i": batch})
            written += len(batch)
            if written >= 20:
                underway.set()

    writer = asyncio.create_task(keep_writing())
    try:
        await underway.wait()  # the backup starts in the middle of the writes
        target = tmp_path / "backups" / "memoria-copy.db"
        target.parent.mkdir()
        result = await asyncio.to_thread(cli, "backup", str(target))
    finally:
        stop.set()
        await writer
    assert result.status == 0, result
    assert written >= 30  # writes went on around the backup
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not list(target.parent.glob(".*partial*"))

    with contextlib.closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        rows = copy.execute("SELECT count(*) FROM memories").fetchone()[0]
        assert copy.execute("PRAGMA foreign_key_check").fetchall() == []
    assert 40 + 20 <= rows <= 40 + written
    assert f"Backed up 2 users and {rows} memories" in result.out

    again = await asyncio.to_thread(cli, "backup", str(target))
    assert again.status == 1
    assert "already exists" in again.err

    # The copy is a working deployment: the command line reads it as its database.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(target, restored / "memoria.db")
    with monkeypatch.context() as env:
        env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{restored / 'memoria.db'}")
        listed = await asyncio.to_thread(cli, "user", "list")
    assert "writer" in listed.out

    # Vector index files: saved, they match the rows; a deleted field's file is pointed out.
    search = 'query($f: ID!) { searchMemories(fieldId: $f, query: "note", topK: 1) { score } }'
    await user.data(search, {"f": field})  # loads the field's index
    await server.runtime.db.faiss.save()
    index_dir = cli.data_dir / "vectors"
    report = await asyncio.to_thread(cli, "doctor")
    assert _statuses(report.out)["vector index"] == "ok", report.out
    orphan = index_dir / f"{uuid.uuid4()}.faiss"
    shutil.copy(index_dir / f"{field}.faiss", orphan)
    shutil.copy(index_dir / f"{field}.ids", orphan.with_suffix(".ids"))
    report = await asyncio.to_thread(cli, "doctor")
    line = next(x for x in report.out.splitlines() if "vector index:" in x)
    assert line.startswith("WARN")
    assert "belongs to no field" in line

    # Deleting the user takes the field's index files with the rows.
    deleted = await asyncio.to_thread(cli, "user", "delete", "writer", "--yes")
    assert "(1 memory field)" in deleted.out, deleted
    assert not (index_dir / f"{field}.faiss").exists()
    assert not (index_dir / f"{field}.ids").exists()
