"""Data sources: connect (with OAuth2 for cloud services), list, upload files, request syncs.

Nothing here talks to a source: a sync request only queues a durable :class:`SyncRun`
row that :class:`domain.services.source_sync.SourceSyncRunner` picks up in the background.
Credentials are encrypted at rest and never returned.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any

from domain.clock import Clock
from domain.entities import Actor, new_id
from domain.errors import BadUserInput, NotFound, RateLimited
from domain.events import DomainEvent
from domain.ports import SecretCipher, UnitOfWork
from domain.ports.security import SourceTargetCheck
from domain.services.fields import FieldService
from domain.sources import (
    OAUTH_KINDS,
    DataSource,
    OAuthClient,
    OAuthTokens,
    SourceFile,
    SourceKind,
    SourceStatus,
    StateSigner,
    SyncRun,
    SyncStatus,
)

SYNC_REQUESTED = "source.sync_requested"  # internal: wakes the sync worker
SECRET_KEYS = ("token", "access_token", "refresh_token", "password", "api_key")
DEFAULT_FIELD = "sources"
_REPO = re.compile(r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$")
MAX_FILE_BYTES = 20 * 1024 * 1024


def tokens_to_credentials(tokens: OAuthTokens) -> dict[str, Any]:
    return {
        "token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
    }


def _str_list(config: dict[str, Any], key: str, *, required: bool) -> list[str]:
    raw = config.get(key) or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise BadUserInput(f"config.{key} must be a list of strings", details={"field": key})
    if required and not raw:
        raise BadUserInput(f"config.{key} is required", details={"field": key})
    return [x.strip() for x in raw]


def check_config(kind: SourceKind, config: dict[str, Any]) -> dict[str, Any]:
    """Validated, normalised non-secret configuration of a source."""
    clean = {k: v for k, v in config.items() if k not in SECRET_KEYS}
    if kind is SourceKind.GITHUB:
        repos = _str_list(clean, "repos", required=True)
        bad = [r for r in repos if not _REPO.match(r)]
        if bad:
            raise BadUserInput(f"repos must be owner/name: {', '.join(bad)}")
        clean["repos"] = repos
    elif kind is SourceKind.SLACK:
        clean["channels"] = _str_list(clean, "channels", required=True)
    elif kind is SourceKind.EMAIL:
        for key in ("host", "username"):
            if not isinstance(clean.get(key), str) or not clean[key].strip():
                raise BadUserInput(f"config.{key} is required", details={"field": key})
        port = clean.get("port", 993)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise BadUserInput("config.port must be a port number", details={"field": "port"})
        clean["port"] = port
        clean["mailbox"] = str(clean.get("mailbox") or "INBOX")
        clean["ssl"] = bool(clean.get("ssl", True))
    elif kind is SourceKind.FILES and "path" in clean and not isinstance(clean["path"], str):
        raise BadUserInput("config.path must be a string", details={"field": "path"})
    return clean


class SourceService:
    def __init__(
        self,
        *,
        cipher: SecretCipher,
        signer: StateSigner,
        oauth: OAuthClient | None,
        fields: FieldService,
        clock: Clock,
        syncs_per_minute: int = 10,
        state_ttl: timedelta = timedelta(minutes=15),
        targets: SourceTargetCheck | None = None,
    ) -> None:
        self._cipher = cipher
        self._targets = targets  # mail host / folder checks at connect; None: unchecked
        self._signer = signer
        self._oauth = oauth
        self._fields = fields
        self._clock = clock
        self._syncs_per_minute = syncs_per_minute
        self._state_ttl = state_ttl

    async def create(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        kind: str,
        config: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> tuple[DataSource, str | None]:
        """Returns the source and, for a cloud source with no token, the OAuth URL to visit."""
        try:
            source_kind = SourceKind((kind or "").strip().lower())
        except ValueError:
            known = ", ".join(k.value for k in SourceKind)
            raise BadUserInput(f"type must be one of {known}", details={"field": "type"}) from None
        raw = dict(config or {})
        if not isinstance(config or {}, dict):
            raise BadUserInput("config must be an object", details={"field": "config"})
        clean = check_config(source_kind, raw)
        if self._targets is not None:
            await self._targets.check(source_kind.value, clean)
        secrets = {k: raw[k] for k in SECRET_KEYS if isinstance(raw.get(k), str) and raw[k]}
        if "access_token" in secrets:
            secrets["token"] = secrets.pop("access_token")
        if source_kind is SourceKind.EMAIL and "password" not in secrets:
            raise BadUserInput(
                "config.password is required for email", details={"field": "password"}
            )
        field_id = clean.pop("field_id", None)
        if isinstance(field_id, str):
            field = await self._fields.get(uow=uow, actor=actor, field_id=field_id)
        else:
            field = await self._fields.by_namespace(
                uow=uow, actor=actor, namespace=DEFAULT_FIELD, create=True
            )
        needs_oauth = source_kind in OAUTH_KINDS and "token" not in secrets
        if needs_oauth and (self._oauth is None or not self._oauth.supports(source_kind)):
            raise BadUserInput(
                f"{source_kind.value} needs config.token, or OAuth configured on the server",
                details={"field": "config"},
            )
        source = DataSource(
            id=new_id(),
            user_id=actor.user_id,
            kind=source_kind,
            name=(name or source_kind.value).strip()[:200] or source_kind.value,
            status=SourceStatus.PENDING_AUTH if needs_oauth else SourceStatus.CONNECTED,
            config=clean,
            credentials_encrypted=self._cipher.encrypt(json.dumps(secrets)) if secrets else None,
            cursor={},
            field_id=field.id,
            item_count=0,
            created_at=self._clock.now(),
        )
        await uow.sources.add(source)
        oauth_url = None
        if needs_oauth:
            assert self._oauth is not None
            expires = self._clock.now() + self._state_ttl
            state = self._signer.sign(
                {"sid": source.id, "uid": actor.user_id, "exp": int(expires.timestamp())}
            )
            oauth_url = self._oauth.authorization_url(kind=source_kind, state=state)
        return source, oauth_url

    async def complete_oauth(self, *, uow: UnitOfWork, state: str, code: str) -> DataSource:
        """The OAuth callback: ``state`` (signed by us) says whose source this is."""
        if not code or not state:
            raise BadUserInput("code and state are required")
        try:
            claims = self._signer.verify(state)
        except ValueError:
            raise BadUserInput("invalid OAuth state") from None
        if int(claims.get("exp", 0)) < self._clock.now().timestamp():
            raise BadUserInput("the OAuth state has expired; connect the source again")
        source = await uow.sources.get(str(claims.get("sid")), user_id=str(claims.get("uid")))
        if source is None:
            raise NotFound("Source not found")
        if source.status is not SourceStatus.PENDING_AUTH or self._oauth is None:
            raise BadUserInput("this source is not waiting for authorization")
        tokens = await self._oauth.exchange(kind=source.kind, code=code)
        source.credentials_encrypted = self._cipher.encrypt(
            json.dumps(tokens_to_credentials(tokens))
        )
        source.status = SourceStatus.CONNECTED
        await uow.sources.update(source)
        return source

    async def list(self, *, uow: UnitOfWork, actor: Actor) -> list[DataSource]:
        return await uow.sources.list(user_id=actor.user_id)

    async def get(self, *, uow: UnitOfWork, actor: Actor, source_id: str) -> DataSource:
        source = await uow.sources.get(source_id, user_id=actor.user_id)
        if source is None:
            raise NotFound("Source not found")
        return source

    async def delete(self, *, uow: UnitOfWork, actor: Actor, source_id: str) -> bool:
        """Forget the source and its credentials; memories it made stay (they are the
        user's own and may be deleted one by one)."""
        if not await uow.sources.delete(source_id, user_id=actor.user_id):
            raise NotFound("Source not found")
        return True

    async def upload_file(
        self, *, uow: UnitOfWork, actor: Actor, source_id: str, name: str, data: bytes
    ) -> SourceFile:
        source = await self.get(uow=uow, actor=actor, source_id=source_id)
        if source.kind is not SourceKind.FILES:
            raise BadUserInput("files can only be uploaded to a files source")
        filename = (name or "").strip().replace("\\", "/").rsplit("/", 1)[-1][:255]
        if not filename:
            raise BadUserInput("a file name is required", details={"field": "name"})
        if not data:
            raise BadUserInput("the file is empty", details={"field": "file"})
        if len(data) > MAX_FILE_BYTES:
            raise BadUserInput(f"files are limited to {MAX_FILE_BYTES // (1024 * 1024)} MB")
        file = SourceFile(
            id=new_id(),
            source_id=source.id,
            user_id=actor.user_id,
            name=filename,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            uploaded_at=self._clock.now(),
        )
        await uow.sources.add_file(file)
        return file

    async def request_sync(self, *, uow: UnitOfWork, actor: Actor, source_id: str) -> SyncRun:
        """Queue a sync (10 per minute per user, counted in the store so every server
        process shares the budget); the background worker runs it."""
        source = await self.get(uow=uow, actor=actor, source_id=source_id)
        if source.status is SourceStatus.PENDING_AUTH:
            raise BadUserInput("authorize the source first (follow its oauth_url)")
        now = self._clock.now()
        recent = await uow.sources.syncs_since(
            user_id=actor.user_id, since=now - timedelta(minutes=1)
        )
        if recent >= self._syncs_per_minute:
            raise RateLimited(
                f"at most {self._syncs_per_minute} syncs per minute",
                retry_after=60,
                limit=self._syncs_per_minute,
            )
        run = SyncRun(
            id=new_id(),
            source_id=source.id,
            user_id=actor.user_id,
            status=SyncStatus.QUEUED,
            requested_at=now,
        )
        await uow.sources.add_sync(run)
        source.status = SourceStatus.QUEUED
        await uow.sources.update(source)
        uow.record(
            DomainEvent(
                name=SYNC_REQUESTED,
                user_id=actor.user_id,
                at=now,
                payload={"source_id": source.id, "sync_id": run.id},
            )
        )
        return run

    async def sync_run(self, *, uow: UnitOfWork, actor: Actor, run_id: str) -> SyncRun:
        run = await uow.sources.get_sync(run_id, user_id=actor.user_id)
        if run is None:
            raise NotFound("Sync not found")
        return run


def parse_expiry(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
