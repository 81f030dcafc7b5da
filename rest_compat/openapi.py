"""The OpenAPI 3 document, generated from the same :class:`Endpoint` declarations that
validate requests, and Swagger UI served from the installed ``swagger-ui-bundle`` package
(no CDN: the docs work offline)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from domain.errors import NotFound
from rest_compat.endpoint import Call, Endpoint, RestConfig

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")

_STATUS_TEXT = {
    400: "Bad request",
    401: "Missing or invalid authentication",
    402: "Insufficient balance",
    403: "Insufficient permissions",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported content type",
    429: "Too many requests",
    500: "Server error",
    503: "Service unavailable",
}

RATE_HEADERS = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Budget per window"},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Left this window"},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Window end (epoch s)"},
}


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", f"{endpoint.method} {endpoint.path}").strip("_")
    return words.lower()


def operation(endpoint: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": _operation_id(endpoint),
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
    }
    if endpoint.description:
        op["description"] = endpoint.description
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(endpoint.path)
    ]
    for spec in endpoint.query:
        schema = spec.json_schema()
        schema.pop("nullable", None)
        params.append(
            {
                "name": spec.name,
                "in": "query",
                "required": spec.required,
                "schema": schema,
                **({"description": spec.description} if spec.description else {}),
            }
        )
    if params:
        op["parameters"] = params
    if endpoint.body is not None:
        schema = endpoint.body.json_schema()
        content: dict[str, Any] = {"application/json": {"schema": schema}}
        if endpoint.multipart:
            form = {**schema, "properties": {**schema["properties"]}}
            form["properties"]["file"] = {"type": "string", "format": "binary"}
            content["multipart/form-data"] = {"schema": form}
        # A body of only optional fields (a sync trigger, a rotation) may be left out.
        required = any(spec.required for spec in endpoint.body)
        op["requestBody"] = {"required": required, "content": content}
    success: dict[str, Any] = {"description": "Success", "headers": RATE_HEADERS}
    if endpoint.status != 204:
        media = endpoint.response_content_type
        success["content"] = {media: {"schema": dict(endpoint.response or {"type": "object"})}}
        if endpoint.streams:
            success["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {str(endpoint.status): success}
    error = {"application/json": {"schema": endpoint.dialect.error_schema()}}
    statuses = set(endpoint.errors) | {429, 500}
    if endpoint.body is not None:
        statuses |= {400, 413, 415}
    if endpoint.auth:
        statuses.add(401)
    if endpoint.quota is not None:
        statuses.add(403)  # a tier quota refuses the write
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": error,
            "headers": RATE_HEADERS,
        }
    op["responses"] = responses
    if endpoint.auth:
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    return op


def document(endpoints: Sequence[Endpoint], config: RestConfig) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = operation(endpoint)
    tags = sorted({e.tag for e in endpoints})
    return {
        "openapi": "3.0.3",
        "info": {
            "title": config.title,
            "version": config.version,
            "description": "The five documented REST APIs (Sentech, Senua Memory, MemoryKit, "
            "SID, Chat API) served on Memoria's domain services. GraphQL is at /graphql.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A JWT from login, or an API key (mk_...).",
                }
            }
        },
    }


def swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


SWAGGER_ASSETS = (
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
)

_SWAGGER_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>{title}</title>
  <link rel="stylesheet" href="/api/docs/assets/swagger-ui.css" />
  <link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/api/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "/api/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      persistAuthorization: true,
    }});
  </script>
</body>
</html>
"""


def docs_endpoints(
    all_endpoints: list[Endpoint], config: RestConfig, dialect: Any
) -> list[Endpoint]:
    """``/api/openapi.json``, ``/api/docs`` and its assets; they document themselves too."""
    from rest_compat.endpoint import Group
    from rest_compat.fields import OBJ

    group = Group(dialect=dialect, tag="Documentation")

    async def openapi_json(_call: Call) -> JSONResponse:
        """The OpenAPI 3 document of every REST route"""
        return JSONResponse(document(all_endpoints, config))

    async def swagger_ui(_call: Call) -> Response:
        """Swagger UI (assets served locally)"""
        return HTMLResponse(_SWAGGER_HTML.format(title=config.title))

    async def swagger_asset(call: Call) -> Response:
        """A Swagger UI asset"""
        name = call.path["name"]
        if name not in SWAGGER_ASSETS:
            raise NotFound("No such asset")
        return FileResponse(swagger_dir() / name)

    group.get("/api/openapi.json", openapi_json, auth=False, response=OBJ, errors=())
    group.get(
        "/api/docs",
        swagger_ui,
        auth=False,
        response={"type": "string"},
        response_content_type="text/html",
        errors=(),
    )
    group.get(
        "/api/docs/assets/{name}",
        swagger_asset,
        auth=False,
        response={"type": "string"},
        response_content_type="application/octet-stream",
        errors=(404,),
    )
    return group.endpoints
