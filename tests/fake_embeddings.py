"""A fake OpenAI-compatible /v1/embeddings server over real HTTP on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import RunningServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class FakeEmbeddings:
    """Deterministic 12-dimensional vectors (not normalised); can fail on demand."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []

    async def handle(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("authorization")})
        if self.fail_next:
            return JSONResponse({"error": "busy"}, status_code=self.fail_next.pop(0))
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [b * 0.5 + 1.0 for b in hashlib.sha256(text.encode()).digest()[:12]],
            }
            for i, text in enumerate(body["input"])
        ]
        data.reverse()  # servers may answer out of order; "index" says which is which
        return JSONResponse({"object": "list", "data": data, "model": body["model"]})


@pytest.fixture
async def fake_embeddings() -> AsyncIterator[tuple[FakeEmbeddings, str]]:
    state = FakeEmbeddings()
    app = Starlette(routes=[Route("/v1/embeddings", state.handle, methods=["POST"])])
    server = await RunningServer(app).start()
    try:
        yield state, server.url
    finally:
        await server.stop()
