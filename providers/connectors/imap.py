"""Email over IMAP (stdlib ``imaplib`` in a worker thread).

The mail host goes through the outbound guard on every sync: its name is resolved and
checked there, and the socket goes to the checked address (TLS still verifies the name).

Incremental: the cursor keeps the mailbox's UIDVALIDITY and the highest UID imported; a
later sync fetches ``UID <last+1>:*`` only. A changed UIDVALIDITY starts over (the
per-message ``Message-ID`` dedupe keeps memories from doubling).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

from domain.errors import ProviderUnavailable
from domain.sources import DataSource, SourceBatch, SourceDocument, SourceKind
from providers.connectors.extract import html_to_text
from providers.outbound.guard import OutboundGuard

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    text = str(content)
    return html_to_text(text) if part.get_content_type() == "text/html" else text.strip()


def _parse(uid: int, raw: bytes, mailbox: str) -> SourceDocument:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    try:
        sent = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    except (TypeError, ValueError):
        sent = None
    if sent is not None and sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    message_id = str(message["Message-ID"] or f"uid-{uid}").strip()
    subject = str(message["Subject"] or "(no subject)")
    return SourceDocument(
        external_id=message_id,
        title=f"Email: {subject}",
        text=_body(message),
        occurred_at=sent or datetime.now(UTC),
        url=f"imap://{mailbox}/;UID={uid}",
        version=message_id,
        metadata={"from": str(message["From"] or ""), "subject": subject, "uid": uid},
    )


def _connect_checked(
    host: str, port: int, timeout: float | None, guard: OutboundGuard
) -> socket.socket:
    failure: OSError | None = None
    for address in guard.resolve_blocking(host, port):
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            failure = exc
    raise failure or OSError(f"cannot connect to {host}")


class _GuardedImap(imaplib.IMAP4):
    """``imaplib.IMAP4`` whose socket goes to an address the guard checked."""

    def __init__(self, host: str, port: int, *, timeout: float, guard: OutboundGuard) -> None:
        self._guard = guard
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return _connect_checked(self.host, self.port, timeout, self._guard)


class _GuardedImapSsl(imaplib.IMAP4_SSL):
    """``imaplib.IMAP4_SSL`` connected like :class:`_GuardedImap`; TLS checks the name."""

    def __init__(self, host: str, port: int, *, timeout: float, guard: OutboundGuard) -> None:
        self._guard = guard
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = _connect_checked(self.host, self.port, timeout, self._guard)
        wrapped: socket.socket = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        return wrapped


class ImapConnector:
    kind = SourceKind.EMAIL

    def __init__(
        self, *, guard: OutboundGuard | None = None, batch: int = 50, timeout: float = 30.0
    ) -> None:
        """``guard`` defaults to the strict policy: public mail servers only."""
        self._guard = guard or OutboundGuard()
        self._batch = batch
        self._timeout = timeout

    def _fetch_sync(
        self, config: dict[str, Any], password: str, cursor: dict[str, Any]
    ) -> tuple[list[tuple[int, bytes]], int]:
        cls = _GuardedImapSsl if config.get("ssl", True) else _GuardedImap
        host, port = str(config["host"]), int(config.get("port", 993))
        try:
            with cls(host, port, timeout=self._timeout, guard=self._guard) as imap:
                imap.login(config["username"], password)
                status, _ = imap.select(config.get("mailbox", "INBOX"), readonly=True)
                if status != "OK":
                    raise ProviderUnavailable("the mailbox cannot be opened")
                _, data = imap.status(config.get("mailbox", "INBOX"), "(UIDVALIDITY)")
                found = _UIDVALIDITY.search(data[0] or b"") if data else None
                validity = int(found.group(1)) if found else 0
                last = (
                    int(cursor.get("last_uid", 0)) if cursor.get("uidvalidity") == validity else 0
                )
                _, hits = imap.uid("SEARCH", f"UID {last + 1}:*")
                uids = sorted(int(u) for u in (hits[0] or b"").split() if int(u) > last)
                messages = []
                for uid in uids:
                    _, parts = imap.uid("FETCH", str(uid), "(RFC822)")
                    raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
                    if isinstance(raw, bytes):
                        messages.append((uid, raw))
                return messages, validity
        except imaplib.IMAP4.error as exc:
            raise ProviderUnavailable(f"IMAP error: {exc}") from None
        except OSError as exc:
            raise ProviderUnavailable(f"IMAP server unreachable: {exc}") from None

    async def fetch(
        self, *, source: DataSource, credentials: dict[str, Any], cursor: dict[str, Any]
    ) -> AsyncIterator[SourceBatch]:
        password = str(credentials.get("password") or "")
        messages, validity = await asyncio.to_thread(
            self._fetch_sync, source.config, password, cursor
        )
        mailbox = f"{source.config.get('username')}@{source.config.get('host')}"
        for start in range(0, len(messages), self._batch):
            chunk = messages[start : start + self._batch]
            documents = [_parse(uid, raw, mailbox) for uid, raw in chunk]
            yield SourceBatch(
                documents=documents, cursor={"uidvalidity": validity, "last_uid": chunk[-1][0]}
            )
        if not messages:
            yield SourceBatch(documents=[], cursor=dict(cursor) or {"uidvalidity": validity})
