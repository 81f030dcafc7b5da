"""The OpenAPI document describes every REST route; Swagger UI works offline; schemathesis
fuzzing of the document finds no 500s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import RunningServer
from hypothesis import HealthCheck, Phase, given, settings
from rest_helpers import Rest, roomy
from threaded_server import ThreadedServer

from memoria.app import build_app
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder
from rest_compat.app import all_endpoints
from rest_compat.endpoint import RestConfig


async def test_document_lists_every_route_with_schemas(
    rest_server: RunningServer, anon: Rest
) -> None:
    response = await anon.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    declared = {
        (e.method.lower(), e.path) for e in all_endpoints(rest_server.runtime.deps, RestConfig())
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == declared
    for path in (
        "/fields/{fieldId}/memories/query",
        "/api/auth/login",
        "/v1/chat/completions",
        "/v1/memory/chat/completions",
        "/chat/attachments",
        "/v1/conversations",
    ):
        assert any(p == path for _m, p in documented), path
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            success = [s for s in op["responses"] if s.startswith("2")]
            assert success, (method, path)
            if method == "post":
                assert "requestBody" in op, path
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                assert schema["type"] == "object", path
                assert "properties" in schema, path
            assert "429" in op["responses"]
            assert "500" in op["responses"]
    # Every write a tier quota counts may be refused with 403, so it is documented.
    for endpoint in all_endpoints(rest_server.runtime.deps, RestConfig()):
        if endpoint.quota is not None:
            op = doc["paths"][endpoint.path][endpoint.method.lower()]
            assert "403" in op["responses"], endpoint.path
    assert "403" in doc["paths"]["/chat/messages"]["post"]["responses"]
    # A body is required only where it has required fields: a sync trigger takes none.
    assert doc["paths"]["/api/sources/{id}/sync"]["post"]["requestBody"]["required"] is False
    assert doc["paths"]["/api/auth/login"]["post"]["requestBody"]["required"] is True
    login = doc["paths"]["/api/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "username_or_email",
        "password",
    ]
    senua_error = login["responses"]["401"]["content"]["application/json"]["schema"]
    assert senua_error["properties"]["error"]["required"] == ["code", "message", "details"]
    assert (
        "multipart/form-data" in doc["paths"]["/chat/attachments"]["post"]["requestBody"]["content"]
    )


async def test_swagger_ui_assets_are_local(anon: Rest) -> None:
    page = await anon.get("/api/docs")
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        response = await anon.get(f"/api/docs/assets/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 1000, asset
    assert (await anon.get("/api/docs/assets/..%2Fsecret")).status_code == 404


@pytest.fixture
def fuzz_target(settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    app = build_app(roomy(settings), embedder=HashingEmbedder())
    with ThreadedServer(app) as url:
        login = httpx.post(
            f"{url}/api/auth/login",
            json={"username_or_email": "admin", "password": "admin-password-123"},
        )
        token = login.json()["access_token"]
        yield url, {"Authorization": f"Bearer {token}"}


EXAMPLES_PER_OPERATION = 4


def test_schemathesis_finds_no_server_errors(fuzz_target: tuple[str, dict[str, str]]) -> None:
    url, headers = fuzz_target
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/api/openapi.json").json())
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: Any) -> None:
            nonlocal checked
            response = case.call(base_url=url, headers=headers, timeout=30)
            checked += 1
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        run()
    assert checked >= 30
    assert failures == []
