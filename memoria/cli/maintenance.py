"""``memoria migrate``, ``memoria backup PATH`` and ``memoria doctor``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memoria.cli.common import CliError, load_settings, require_reachable, run
from memoria.settings import Settings, SettingsError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = sub.add_parser("migrate", help="upgrade the database schema to this version's")
    migrate.set_defaults(run=_migrate)

    backup = sub.add_parser(
        "backup", help="copy the SQLite database online (PostgreSQL: print the pg_dump command)"
    )
    backup.add_argument("path", type=Path, help="backup file, or a directory to put one in")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    backup.set_defaults(run=_backup)

    doctor = sub.add_parser("doctor", help="check the deployment; exit 1 if anything fails")
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    doctor.set_defaults(run=_doctor)


def _migrate(_args: argparse.Namespace) -> int:
    settings = load_settings()
    before, after = run(_upgrade(settings))
    if before == after:
        print(f"Database already at the newest revision, {after}.")
    else:
        print(f"Migrated the database from {before or 'an empty schema'} to {after}.")
    return 0


async def _upgrade(settings: Settings) -> tuple[str | None, str | None]:
    from memoria.bootstrap import make_database_private
    from memoria.cli.revisions import current_revision, is_known
    from persistence.database import Database
    from persistence.migrate import upgrade

    make_database_private(settings)  # a new SQLite file is created 0600, as by serve
    db = Database(settings.resolved_database_url)
    try:
        await require_reachable(db.engine, settings)
        before = await current_revision(db.engine)
        if before is not None and not is_known(before):
            raise CliError(
                f"the database is at revision {before}, unknown to this version: "
                "was it migrated by a newer release?"
            )
        await upgrade(db.engine)
        return before, await current_revision(db.engine)
    finally:
        await db.dispose()


def _backup(args: argparse.Namespace) -> int:
    from memoria.backup import BackupError, backup_sqlite, destination, pg_dump_command, sqlite_file

    settings = load_settings()
    url = settings.resolved_database_url
    if not settings.is_sqlite:
        print(
            "memoria: PostgreSQL is backed up with pg_dump; run this (restore with pg_restore):",
            file=sys.stderr,
        )
        print(pg_dump_command(url, args.path))
        return 0
    try:
        made = backup_sqlite(sqlite_file(url), destination(args.path), overwrite=args.force)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    print(
        f"Backed up {made.users} users and {made.memories} memories to {made.path} "
        f"({made.size_bytes / 2**20:.1f} MiB, mode 0600)."
    )
    if settings.encryption_key is None:
        key = settings.data_dir / "encryption.key"
        print(
            f"Keep a copy of {key} with it: stored provider keys and MFA secrets need it.",
            file=sys.stderr,
        )
    return 0


def _doctor(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"FAIL settings: {exc}")
        return 1
    from memoria.cli.doctor import Doctor

    doctor = Doctor(settings, report=lambda finding: print(finding.line(), flush=True))
    run(doctor.run())
    warned = any(f.status == "WARN" for f in doctor.findings)
    return 0 if doctor.healthy and not (args.strict and warned) else 1
