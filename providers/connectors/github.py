"""GitHub: issues, pull requests and comments of chosen repositories (REST API v3).

Incremental: per repository the cursor keeps the newest ``updated_at`` seen, passed back as
``since``; pages are followed through the ``Link: rel="next"`` header.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from domain.sources import DataSource, SourceBatch, SourceDocument, SourceKind
from providers.connectors.http import ApiClient
from providers.outbound.guard import OutboundGuard

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class GitHubConnector:
    kind = SourceKind.GITHUB

    def __init__(self, *, base_url: str, guard: OutboundGuard, max_wait: float = 60.0) -> None:
        self._api = ApiClient(
            base_url=base_url,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
            max_wait=max_wait,
            guard=guard,
        )

    async def _pages(
        self, path: str, token: str | None, params: dict[str, Any]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            response = await self._api.get(url, token=token, params=query)
            yield list(response.json())
            found = _NEXT.search(response.headers.get("link", ""))
            url, query = (found.group(1), None) if found else (None, None)

    async def fetch(
        self, *, source: DataSource, credentials: dict[str, Any], cursor: dict[str, Any]
    ) -> AsyncIterator[SourceBatch]:
        token = credentials.get("token")
        state = {k: dict(v) for k, v in cursor.items() if isinstance(v, dict)}
        for repo in source.config.get("repos", []):
            repo_state = state.setdefault(repo, {})
            for stream in ("issues", "comments"):
                path = (
                    f"/repos/{repo}/issues"
                    if stream == "issues"
                    else (f"/repos/{repo}/issues/comments")
                )
                params: dict[str, Any] = {"per_page": 100, "sort": "updated", "direction": "asc"}
                if stream == "issues":
                    params["state"] = "all"
                since = repo_state.get(stream)
                if since:
                    params["since"] = since
                async for items in self._pages(path, token, params):
                    documents = [self._document(repo, stream, item) for item in items]
                    if items:
                        newest = max(str(i.get("updated_at") or "") for i in items)
                        repo_state[stream] = max(newest, repo_state.get(stream) or "")
                    yield SourceBatch(
                        documents=documents, cursor={k: dict(v) for k, v in state.items()}
                    )

    def _document(self, repo: str, stream: str, item: dict[str, Any]) -> SourceDocument:
        updated = str(item.get("updated_at") or item.get("created_at"))
        created = str(item.get("created_at") or updated)
        user = (item.get("user") or {}).get("login", "")
        if stream == "comments":
            number = str(item.get("issue_url", "")).rsplit("/", 1)[-1]
            return SourceDocument(
                external_id=f"{repo}#comment-{item['id']}",
                title=f"Comment by {user} on {repo}#{number}",
                text=str(item.get("body") or ""),
                occurred_at=_when(created),
                url=item.get("html_url"),
                version=updated,
                metadata={"repo": repo, "type": "comment", "author": user, "number": number},
            )
        kind = "pull_request" if item.get("pull_request") else "issue"
        label = "PR" if kind == "pull_request" else "Issue"
        return SourceDocument(
            external_id=f"{repo}#{item['number']}",
            title=f"{label} {repo}#{item['number']}: {item.get('title', '')}",
            text=str(item.get("body") or item.get("title") or ""),
            occurred_at=_when(created),
            url=item.get("html_url"),
            version=updated,
            metadata={
                "repo": repo,
                "type": kind,
                "author": user,
                "number": item["number"],
                "state": item.get("state"),
            },
        )
