"""GraphiQL is served with local assets only: it works with no internet."""

from __future__ import annotations

import re

import httpx
from conftest import RunningServer


async def test_graphiql_page_uses_only_local_assets(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources
        for source in sources:
            assert source.startswith("/static/"), source
            asset = await http.get(source)
            assert asset.status_code == 200, source
            assert len(asset.content) > 1000


async def test_health_over_get_and_graphql(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        plain = await http.get("/health")
        assert plain.status_code == 200
        assert plain.json()["status"] == "healthy"
        gql = await http.get("/graphql", params={"query": "{ health { status database } }"})
    assert gql.json()["data"]["health"]["status"] == "healthy"
