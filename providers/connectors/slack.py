"""Slack: channel history through the Web API (``conversations.history``).

Incremental: per channel the cursor keeps the newest message ``ts``, passed as ``oldest``;
pages follow ``response_metadata.next_cursor``. ``token_expired``/``invalid_auth`` answers
become :class:`TokenExpired` (Slack says HTTP 200 with ``ok: false``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from domain.errors import ProviderUnavailable
from domain.sources import DataSource, SourceBatch, SourceDocument, SourceKind, TokenExpired
from providers.connectors.http import ApiClient
from providers.outbound.guard import OutboundGuard

_EXPIRED = frozenset({"token_expired", "invalid_auth", "token_revoked", "not_authed"})


class SlackConnector:
    kind = SourceKind.SLACK

    def __init__(self, *, base_url: str, guard: OutboundGuard, max_wait: float = 60.0) -> None:
        self._api = ApiClient(base_url=base_url, max_wait=max_wait, guard=guard)

    async def fetch(
        self, *, source: DataSource, credentials: dict[str, Any], cursor: dict[str, Any]
    ) -> AsyncIterator[SourceBatch]:
        token = credentials.get("token")
        state = dict(cursor)
        for channel in source.config.get("channels", []):
            oldest = state.get(channel)
            page_cursor: str | None = None
            while True:
                params: dict[str, Any] = {"channel": channel, "limit": 200}
                if oldest:
                    params["oldest"] = oldest
                if page_cursor:
                    params["cursor"] = page_cursor
                body = (
                    await self._api.get("/conversations.history", token=token, params=params)
                ).json()
                if not body.get("ok"):
                    error = str(body.get("error"))
                    if error in _EXPIRED:
                        raise TokenExpired(error)
                    raise ProviderUnavailable(f"Slack refused: {error}")
                messages = [m for m in body.get("messages", []) if m.get("text")]
                documents = [self._document(channel, m) for m in messages]
                page_cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
                if messages:
                    newest = max(messages, key=lambda m: float(m["ts"]))["ts"]
                    if not state.get(channel) or float(newest) > float(state[channel]):
                        state[channel] = newest
                # The channel's cursor only moves on once all of its pages are read.
                done = not (body.get("has_more") and page_cursor)
                saved = dict(state) if done else {**state, channel: oldest}
                if not saved.get(channel):
                    saved.pop(channel, None)
                yield SourceBatch(documents=documents, cursor=saved)
                if done:
                    break

    def _document(self, channel: str, message: dict[str, Any]) -> SourceDocument:
        ts = str(message["ts"])
        user = str(message.get("user") or message.get("username") or "")
        return SourceDocument(
            external_id=f"{channel}:{ts}",
            title=f"Slack message in {channel}" + (f" from {user}" if user else ""),
            text=str(message["text"]),
            occurred_at=datetime.fromtimestamp(float(ts), tz=UTC),
            url=message.get("permalink") or f"slack://channel?id={channel}&message={ts}",
            version=str((message.get("edited") or {}).get("ts") or ts),
            metadata={"channel": channel, "author": user, "ts": ts},
        )
