"""Notion: pages shared with the integration, through ``/v1/search`` and block children.

Incremental: pages come sorted by ``last_edited_time`` ascending; the cursor keeps the
newest edit time imported, and pages not edited since are skipped without reading them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from domain.sources import DataSource, SourceBatch, SourceDocument, SourceKind
from providers.connectors.http import ApiClient
from providers.outbound.guard import OutboundGuard

NOTION_VERSION = "2022-06-28"


def _plain(rich: list[dict[str, Any]] | None) -> str:
    return "".join(str(part.get("plain_text", "")) for part in rich or [])


def page_title(page: dict[str, Any]) -> str:
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return _plain(prop.get("title"))
    return "Untitled"


class NotionConnector:
    kind = SourceKind.NOTION

    def __init__(self, *, base_url: str, guard: OutboundGuard, max_wait: float = 60.0) -> None:
        self._api = ApiClient(
            base_url=base_url,
            headers={"Notion-Version": NOTION_VERSION},
            max_wait=max_wait,
            guard=guard,
        )

    async def _text(self, page_id: str, token: str | None) -> str:
        lines: list[str] = []
        start: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": 100}
            if start:
                params["start_cursor"] = start
            body = (
                await self._api.get(f"/v1/blocks/{page_id}/children", token=token, params=params)
            ).json()
            for block in body.get("results", []):
                content = block.get(block.get("type", ""), {})
                if isinstance(content, dict):
                    text = _plain(content.get("rich_text"))
                    if text:
                        lines.append(text)
            if not body.get("has_more"):
                return "\n\n".join(lines)
            start = body.get("next_cursor")

    async def fetch(
        self, *, source: DataSource, credentials: dict[str, Any], cursor: dict[str, Any]
    ) -> AsyncIterator[SourceBatch]:
        token = credentials.get("token")
        since = str(cursor.get("last_edited") or "")
        start: str | None = None
        while True:
            payload: dict[str, Any] = {
                "filter": {"property": "object", "value": "page"},
                "sort": {"direction": "ascending", "timestamp": "last_edited_time"},
                "page_size": 50,
            }
            if source.config.get("query"):
                payload["query"] = source.config["query"]
            if start:
                payload["start_cursor"] = start
            body = (await self._api.post("/v1/search", token=token, json=payload)).json()
            documents = []
            newest = since
            for page in body.get("results", []):
                edited = str(page.get("last_edited_time") or "")
                if since and edited <= since:
                    continue
                documents.append(
                    SourceDocument(
                        external_id=str(page["id"]),
                        title=page_title(page),
                        text=await self._text(str(page["id"]), token),
                        occurred_at=datetime.fromisoformat(
                            str(page.get("created_time") or edited).replace("Z", "+00:00")
                        ),
                        url=page.get("url"),
                        version=edited,
                        metadata={"page_id": page["id"]},
                    )
                )
                newest = max(newest, edited)
            yield SourceBatch(documents=documents, cursor={"last_edited": newest} if newest else {})
            since = newest
            if not body.get("has_more"):
                return
            start = body.get("next_cursor")
