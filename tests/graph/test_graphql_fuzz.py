"""A bounded fuzz of ``/graphql`` from the schema itself (hypothesis-graphql): valid documents
with arbitrary argument values, and invalid ones, sent as an admin over real HTTP. Whatever
comes in, the answer is a GraphQL error with a client-side ``extensions.code`` or data —
never a 5xx and never ``INTERNAL``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries
from rest_helpers import roomy
from threaded_server import ThreadedServer

from memoria.app import build_app
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder

SCHEMA = (Path(__file__).resolve().parents[2] / "schema.graphql").read_text()
EXAMPLES = (
    80  # per strategy and backend: the eight runs take ~1 min together on a quiet 2-core machine
)

SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "DateTime": st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: nodes.String(d.isoformat())),
    "JSON": st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers().map(nodes.Int),
        st.lists(st.text(max_size=8).map(nodes.String), max_size=3).map(nodes.List),
    ),
}


@pytest.fixture
def target(settings: Settings) -> Iterator[tuple[httpx.Client, list[str]]]:
    app = build_app(roomy(settings), embedder=HashingEmbedder())
    with ThreadedServer(app) as url:
        client = httpx.Client(base_url=url, timeout=30)
        login = client.post(
            "/graphql",
            json={
                "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                "variables": {"i": {"usernameOrEmail": "admin", "password": "admin-password-123"}},
            },
        )
        client.headers["Authorization"] = f"Bearer {login.json()['data']['login']['accessToken']}"
        failures: list[str] = []
        yield client, failures
        client.close()


def _check(client: httpx.Client, document: str, failures: list[str]) -> None:
    response = client.post("/graphql", json={"query": document})
    if response.status_code >= 500:
        failures.append(f"{response.status_code}: {document[:300]}")
        return
    body = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code == "INTERNAL" or (response.status_code == 200 and code is None):
            failures.append(f"{code}: {error.get('message')}: {document[:300]}")


@pytest.mark.parametrize(
    ("build", "mode"),
    [
        (queries, Mode.POSITIVE),
        (mutations, Mode.POSITIVE),
        (queries, Mode.NEGATIVE),
        (mutations, Mode.NEGATIVE),
    ],
    ids=["queries", "mutations", "invalid-queries", "invalid-mutations"],
)
def test_no_document_gets_a_server_error(
    target: tuple[httpx.Client, list[str]], build: Any, mode: Mode
) -> None:
    client, failures = target
    sent = 0

    @given(document=build(SCHEMA, custom_scalars=SCALARS, mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(document: str) -> None:
        nonlocal sent
        sent += 1
        _check(client, document, failures)

    run()
    assert sent >= EXAMPLES // 2
    assert failures == []
