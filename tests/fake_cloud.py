"""Fake GitHub, Slack, Notion and OAuth2 servers in one Starlette app, served over real HTTP
on loopback. They paginate, answer one rate limit each, and can make the current access
token expire after a number of calls (a token expiring mid-sync)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def issue(number: int, updated: str, *, pr: bool = False, body: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": 1000 + number,
        "number": number,
        "title": f"Issue title {number}",
        "body": body or f"Body of item {number}: the build fails on ARM runners.",
        "state": "open",
        "user": {"login": "octocat"},
        "created_at": f"2025-01-0{min(number, 9)}T10:00:00Z",
        "updated_at": updated,
        "html_url": f"https://github.example/acme/app/issues/{number}",
    }
    if pr:
        item["pull_request"] = {"url": "x"}
    return item


@dataclass
class FakeCloud:
    issues: list[dict[str, Any]] = field(
        default_factory=lambda: [
            issue(1, "2025-01-01T10:00:00Z"),
            issue(2, "2025-01-02T10:00:00Z", pr=True, body="Adds caching to the API layer."),
            issue(3, "2025-01-03T10:00:00Z"),
        ]
    )
    comments: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": 77,
                "body": "Confirmed on the staging cluster.",
                "user": {"login": "hubot"},
                "created_at": "2025-01-04T10:00:00Z",
                "updated_at": "2025-01-04T10:00:00Z",
                "issue_url": "https://api.example/repos/acme/app/issues/1",
                "html_url": "https://github.example/acme/app/issues/1#c77",
            }
        ]
    )
    slack: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "ts": f"17000000{i}0.000100",
                "user": "U1",
                "text": f"Slack note {i} about the release",
            }
            for i in range(1, 4)
        ]
    )
    pages: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": f"page-{i}",
                "url": f"https://notion.example/page-{i}",
                "created_time": "2025-02-01T09:00:00.000Z",
                "last_edited_time": f"2025-02-0{i}T09:00:00.000Z",
                "properties": {"Name": {"type": "title", "title": [{"plain_text": f"Page {i}"}]}},
            }
            for i in (1, 2)
        ]
    )
    valid_tokens: set[str] = field(default_factory=lambda: {"static-token"})
    expire_after_calls: int | None = None  # expire the token in use after this many API calls
    rate_limit_once: set[str] = field(default_factory=lambda: {"github", "slack", "notion"})
    calls: dict[str, int] = field(default_factory=dict)
    refreshes: int = 0
    rate_limited: list[str] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ---------------------------------------------------------------- helpers

    def _authorised(self, request: Request, service: str) -> bool:
        self.calls[service] = self.calls.get(service, 0) + 1
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token not in self.valid_tokens:
            return False
        if self.expire_after_calls is not None:
            self.expire_after_calls -= 1
            if self.expire_after_calls <= 0:
                self.expire_after_calls = None
                self.valid_tokens.discard(token)  # this call still succeeds; the next won't
        return True

    def _limited(self, service: str) -> Response | None:
        if service in self.rate_limit_once:
            self.rate_limit_once.discard(service)
            self.rate_limited.append(service)
            return JSONResponse(
                {"message": "slow down"}, status_code=429, headers={"Retry-After": "0.2"}
            )
        return None

    # ---------------------------------------------------------------- OAuth

    async def token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("client_id") != "cid" or form.get("client_secret") != "csecret":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") == "authorization_code" and form.get("code") != "good-code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") != "refresh-1":
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            self.refreshes += 1
        token = f"access-{next(self._counter)}"
        self.valid_tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "refresh_token": "refresh-1",
                "expires_in": 3600,
                "token_type": "bearer",
            }
        )

    # ---------------------------------------------------------------- GitHub

    async def gh_issues(self, request: Request) -> Response:
        limited = self._limited("github")
        if limited:
            return limited
        if not self._authorised(request, "github"):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        since = request.query_params.get("since", "")
        items = sorted(
            (i for i in self.issues if i["updated_at"] >= since), key=lambda i: i["updated_at"]
        )
        page = int(request.query_params.get("page", "1"))
        chunk = items[(page - 1) * 2 : page * 2]
        headers = {}
        if page * 2 < len(items):
            nxt = f"{request.url.replace(query='')}?page={page + 1}&since={since}&state=all"
            headers["Link"] = f'<{nxt}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    async def gh_comments(self, request: Request) -> Response:
        if not self._authorised(request, "github"):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        since = request.query_params.get("since", "")
        return JSONResponse([c for c in self.comments if c["updated_at"] >= since])

    # ---------------------------------------------------------------- Slack

    async def slack_history(self, request: Request) -> Response:
        limited = self._limited("slack")
        if limited:
            return limited
        if not self._authorised(request, "slack"):
            return JSONResponse({"ok": False, "error": "token_expired"})
        oldest = float(request.query_params.get("oldest", "0"))
        newer = sorted((m for m in self.slack if float(m["ts"]) > oldest), key=lambda m: m["ts"])
        start = int(request.query_params.get("cursor") or 0)
        chunk = newer[start : start + 2]
        more = start + 2 < len(newer)
        return JSONResponse(
            {
                "ok": True,
                "messages": list(reversed(chunk)),
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + 2) if more else ""},
            }
        )

    # ---------------------------------------------------------------- Notion

    async def notion_search(self, request: Request) -> Response:
        limited = self._limited("notion")
        if limited:
            return limited
        if not self._authorised(request, "notion"):
            return JSONResponse({"object": "error", "code": "unauthorized"}, status_code=401)
        body = await request.json()
        start = int(body.get("start_cursor") or 0)
        pages = sorted(self.pages, key=lambda p: p["last_edited_time"])
        chunk = pages[start : start + 1]
        more = start + 1 < len(pages)
        return JSONResponse(
            {"results": chunk, "has_more": more, "next_cursor": str(start + 1) if more else None}
        )

    async def notion_blocks(self, request: Request) -> Response:
        if not self._authorised(request, "notion"):
            return JSONResponse({"object": "error", "code": "unauthorized"}, status_code=401)
        page = request.path_params["page"]
        blocks = [
            {
                "type": "paragraph",
                "paragraph": {"rich_text": [{"plain_text": f"{page} says: ship it."}]},
            },
            {"type": "heading_1", "heading_1": {"rich_text": [{"plain_text": "Decisions"}]}},
        ]
        return JSONResponse({"results": blocks, "has_more": False, "next_cursor": None})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/github/repos/{owner}/{repo}/issues", self.gh_issues),
                Route("/github/repos/{owner}/{repo}/issues/comments", self.gh_comments),
                Route("/slack/conversations.history", self.slack_history),
                Route("/notion/v1/search", self.notion_search, methods=["POST"]),
                Route("/notion/v1/blocks/{page}/children", self.notion_blocks),
            ]
        )
