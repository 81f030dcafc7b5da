"""First-run set-up: data directory, secrets, database schema and the admin user."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import text

from domain.entities import Role, Tier
from domain.errors import Conflict
from domain.services.auth import AuthService
from memoria.settings import Settings
from persistence.database import Database
from persistence.migrate import upgrade


@dataclass(frozen=True)
class Secrets:
    jwt_secret: str
    encryption_key: bytes


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text().strip()
    value = make()
    # Written whole to a private 0600 file, then linked into place: the secret is never
    # world-readable, even briefly, and of processes starting together (``serve --workers``)
    # the first link wins and the others read the winner's value, never a half-written one.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        draft.unlink()
    return value


def load_secrets(settings: Settings) -> Secrets:
    """Secrets from settings if given (multi-machine), else generated into the data dir."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    jwt_secret = settings.jwt_secret or _read_or_create(
        settings.data_dir / "jwt_secret", lambda: secrets.token_urlsafe(48)
    )
    key = settings.encryption_key or _read_or_create(
        settings.data_dir / "encryption.key", lambda: Fernet.generate_key().decode()
    )
    return Secrets(jwt_secret=jwt_secret, encryption_key=key.encode())


def make_database_private(settings: Settings) -> None:
    """The embedded database and its journal files readable by the server's user only: the
    file is created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the
    database's permissions), and an older deployment's files are narrowed."""
    if not settings.is_sqlite or settings.database_url:
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "memoria.db"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, path.with_name("memoria.db-wal"), path.with_name("memoria.db-shm")):
        if file.exists():
            file.chmod(0o600)


# One PostgreSQL advisory lock key for first-start work (any fixed 64-bit number: "memoria").
_FIRST_START_LOCK = 0x6D656D6F726961


@contextlib.asynccontextmanager
async def first_start_lock(db: Database) -> AsyncIterator[None]:
    """On PostgreSQL, one process at a time of a deployment: workers started together
    migrate and create the admin one after another, never racing. SQLite is one process."""
    if db.is_sqlite:
        yield
        return
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _FIRST_START_LOCK})
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _FIRST_START_LOCK})


async def migrate(db: Database) -> None:
    async with first_start_lock(db):
        await upgrade(db.engine)


async def ensure_admin(db: Database, auth: AuthService, settings: Settings) -> str | None:
    """Create the admin on first run. Returns a generated password to print once, if any."""
    async with first_start_lock(db):
        return await _ensure_admin(db, auth, settings)


async def _ensure_admin(db: Database, auth: AuthService, settings: Settings) -> str | None:
    async with db.unit_of_work() as uow:
        if await uow.users.by_login(settings.admin_username) is not None:
            return None
        password = settings.admin_password or secrets.token_urlsafe(18)
        try:
            await auth.register(
                uow=uow,
                username=settings.admin_username,
                email=settings.admin_email,
                password=password,
                role=Role.ADMIN,
                tier=Tier.UNLIMITED,
            )
        except Conflict:
            return None  # another process created it first
        await uow.commit()
    return None if settings.admin_password else password
