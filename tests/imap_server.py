"""A small real IMAP4rev1 server (asyncio, plain TCP on loopback) for the email connector:
LOGIN, CAPABILITY, EXAMINE/SELECT, STATUS, UID SEARCH, UID FETCH (RFC822), LOGOUT."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field


@dataclass
class Mailbox:
    user: str = "alice@example.com"
    password: str = "imap-pass"
    uidvalidity: int = 7
    messages: dict[int, bytes] = field(default_factory=dict)
    logins: int = 0

    def add(self, uid: int, *, subject: str, body: str, date: str) -> None:
        self.messages[uid] = (
            f"From: Bob <bob@example.com>\r\nTo: {self.user}\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\nMessage-ID: <m{uid}@example.com>\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        ).encode()


class ImapServer:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> ImapServer:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _uids(self, spec: str) -> list[int]:
        uids = sorted(self.mailbox.messages)
        found: list[int] = []
        for part in spec.split(","):
            low, _, high = part.partition(":")
            top = max(uids, default=0)
            lo = top if low == "*" else int(low)
            hi = lo if not high else (top if high == "*" else int(high))
            lo, hi = min(lo, hi), max(lo, hi)
            found += [u for u in uids if lo <= u <= hi]
        return sorted(set(found))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(line: str | bytes) -> None:
            writer.write(line if isinstance(line, bytes) else line.encode() + b"\r\n")

        send("* OK IMAP4rev1 fake server ready")
        authed = False
        try:
            while raw := await reader.readline():
                tag, _, rest = raw.decode().strip().partition(" ")
                command, _, args = rest.partition(" ")
                command = command.upper()
                if command == "CAPABILITY":
                    send("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
                    send(f"{tag} OK CAPABILITY completed")
                elif command == "LOGIN":
                    user, password = [a.strip('"') for a in args.split(" ", 1)]
                    if (user, password) == (self.mailbox.user, self.mailbox.password):
                        authed = True
                        self.mailbox.logins += 1
                        send(f"{tag} OK LOGIN completed")
                    else:
                        send(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
                elif command == "LOGOUT":
                    send("* BYE logging out")
                    send(f"{tag} OK LOGOUT completed")
                    await writer.drain()
                    break
                elif not authed:
                    send(f"{tag} BAD authenticate first")
                elif command in ("SELECT", "EXAMINE"):
                    send(f"* {len(self.mailbox.messages)} EXISTS")
                    send(f"* OK [UIDVALIDITY {self.mailbox.uidvalidity}] UIDs valid")
                    send(f"{tag} OK [READ-ONLY] {command} completed")
                elif command == "STATUS":
                    send(f"* STATUS INBOX (UIDVALIDITY {self.mailbox.uidvalidity})")
                    send(f"{tag} OK STATUS completed")
                elif command == "UID":
                    sub, _, spec = args.partition(" ")
                    if sub.upper() == "SEARCH":
                        match = re.search(r"UID (\S+)", spec, re.IGNORECASE)
                        uids = (
                            self._uids(match.group(1)) if match else sorted(self.mailbox.messages)
                        )
                        send("* SEARCH " + " ".join(str(u) for u in uids))
                        send(f"{tag} OK SEARCH completed")
                    elif sub.upper() == "FETCH":
                        for uid in self._uids(spec.split(" ", 1)[0]):
                            data = self.mailbox.messages[uid]
                            seq = sorted(self.mailbox.messages).index(uid) + 1
                            send(
                                f"* {seq} FETCH (UID {uid} RFC822 {{{len(data)}}}".encode()
                                + b"\r\n"
                                + data
                                + b")\r\n"
                            )
                        send(f"{tag} OK FETCH completed")
                    else:
                        send(f"{tag} BAD unsupported")
                else:
                    send(f"{tag} BAD unsupported command")
                await writer.drain()
        finally:
            writer.close()
