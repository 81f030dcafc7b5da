"""The one request pipeline every REST route runs through.

Order: authenticate (bearer JWT or API key) -> count against the rate limit (headers from
here on, whenever a budget applies) -> read the body within the size limit (413) -> check its
content type (415) and parse it (400) -> validate declared inputs (400) -> the handler (one
service call; the domain services check tier quotas) -> commit -> render. Any error rolls
the unit of work back, so nothing is written, and is rendered in the route's dialect with the
rate-limit headers still attached. Routes declared ``rate_class=LOGIN`` are also watched by
the sign-in throttle per client address (the domain counts per account).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.entities import Actor
from domain.errors import MemoriaError, RateLimited, Unauthenticated
from domain.json_depth import JsonTooDeep, load_json
from domain.policy import holds_nul
from domain.ports import UnitOfWork
from domain.rate_policy import LOGIN
from domain.services.rate_limits import RateDecision, RequestRateLimited
from domain.services.registry import Services
from rest_compat.dialects import Dialect, HttpError, InternalError
from rest_compat.endpoint import Call, Endpoint, Reply, RestConfig, Upload

log = logging.getLogger("memoria.rest")

JSON_TYPES = ("application/json",)
# Every method reaches the responder, which answers 405 in the route's dialect.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def bearer_token(request: Request) -> str | None:
    raw = request.headers.get("authorization")
    if not raw:
        return None
    scheme, _, token = raw.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else raw.strip()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_headers(decision: RateDecision | None, *, refused: bool = False) -> dict[str, str]:
    if decision is None:
        return {}
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_at),
    }
    if refused:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


def json_response(body: Any, status: int, headers: Mapping[str, str]) -> Response:
    if status == 204:
        return Response(status_code=204, headers=dict(headers))
    return JSONResponse(body, status_code=status, headers=dict(headers))


def error_response(
    dialect: Dialect, error: MemoriaError, headers: Mapping[str, str], *, token: bool = False
) -> Response:
    status, body = dialect.render(error, token=token)
    return JSONResponse(body, status_code=status, headers=dict(headers))


class TokenRefused(Exception):
    """The bearer token was refused (the domain's error inside): dialects may word it."""

    def __init__(self, error: Unauthenticated) -> None:
        super().__init__(error.message)
        self.error = error


class Pipeline:
    def __init__(self, services: Services, config: RestConfig) -> None:
        self.services = services
        self.config = config

    def routes(self, endpoints: Sequence[Endpoint]) -> list[Route]:
        """One Starlette route per path; a method it lacks is 405 in the path's dialect."""
        by_path: dict[str, dict[str, Endpoint]] = {}
        for endpoint in endpoints:
            methods = by_path.setdefault(endpoint.path, {})
            if endpoint.method in methods:
                raise ValueError(f"duplicate route {endpoint.method} {endpoint.path}")
            methods[endpoint.method] = endpoint
        return [
            Route(path, self._responder(methods), methods=ALL_METHODS)
            for path, methods in by_path.items()
        ]

    def _responder(self, methods: dict[str, Endpoint]) -> Any:
        allowed = ", ".join(sorted(methods))

        async def respond(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            endpoint = methods.get(method)
            if endpoint is None:
                dialect = next(iter(methods.values())).dialect
                error = HttpError(f"Method {request.method} not allowed", status=405)
                try:
                    counted = await self._count_anonymous(request)
                except RequestRateLimited as refused:
                    headers = rate_headers(refused.decision, refused=True)
                    return error_response(dialect, refused, headers)
                return error_response(dialect, error, {"Allow": allowed, **counted})
            return await self.run(endpoint, request)

        return respond

    async def run(self, endpoint: Endpoint, request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            async with self.services.uow_factory() as uow:
                actor = await self._admit(endpoint, request, uow, headers)
                call = await self._call(endpoint, request, uow, actor)
                if endpoint.own_transactions:
                    # The service opens its own units of work; hold no transaction meanwhile.
                    await uow.commit()
                    call = _without_uow(call)
                    result = None
                else:
                    result = await self._sign_in(endpoint, request, call)
                    await uow.commit()
            if endpoint.own_transactions:
                result = await self._sign_in(endpoint, request, call)
            return self._render(endpoint, result, headers)
        except RequestRateLimited as refused:
            headers = rate_headers(refused.decision, refused=True)
            return error_response(endpoint.dialect, refused, headers)
        except RateLimited as refused:  # the sign-in throttle: no budget headers, a wait
            headers["Retry-After"] = str(refused.retry_after)
            return error_response(endpoint.dialect, refused, headers)
        except TokenRefused as refused:
            return error_response(endpoint.dialect, refused.error, headers, token=True)
        except MemoriaError as error:
            return error_response(endpoint.dialect, error, headers)
        except Exception:  # every unexpected failure is a masked 500, logged with its cause
            log.exception("%s %s failed", endpoint.method, endpoint.path)
            return error_response(endpoint.dialect, InternalError(), headers)

    async def _sign_in(self, endpoint: Endpoint, request: Request, call: Call) -> Any:
        """The handler; on a sign-in route, refused while the client address is locked out
        and a refused credential counted against the address."""
        throttle = self.services.auth.throttle
        if endpoint.rate_class != LOGIN or throttle is None:
            return await endpoint.handler(call)
        client = client_address(request)
        throttle.guard(client=client)
        try:
            return await endpoint.handler(call)
        except Unauthenticated as refused:
            if refused.details.get("reason") != "mfa_required":
                throttle.failed(client=client)
            raise

    async def _count_anonymous(self, request: Request) -> dict[str, str]:
        """Count a request refused before any endpoint runs (405) against the client
        address, like a failed authentication; its rate-limit headers."""
        limiter = self.services.rate_limits
        if limiter is None:
            return {}
        async with self.services.uow_factory() as uow:
            decision = await limiter.check(
                uow=uow, actor=None, route_class=None, client=client_address(request)
            )
            await uow.commit()
        return rate_headers(decision)

    async def _admit(
        self, endpoint: Endpoint, request: Request, uow: UnitOfWork, headers: dict[str, str]
    ) -> Actor | None:
        """Authenticate and count the request; fills ``headers`` as soon as it is counted."""
        limiter = self.services.rate_limits
        client = client_address(request)
        actor: Actor | None = None
        if endpoint.auth:
            try:
                actor = await self.services.auth.authenticate(uow=uow, token=bearer_token(request))
            except Unauthenticated as refused:  # counted against the address, then re-raised
                # Failed authentications count against the client address (guessing tokens).
                if limiter is not None:
                    decision = await limiter.check(
                        uow=uow, actor=None, route_class=None, client=client
                    )
                    headers.update(rate_headers(decision))
                raise TokenRefused(refused) from None
        if limiter is not None:
            decision = await limiter.check(
                uow=uow, actor=actor, route_class=endpoint.rate_class, client=client
            )
            headers.update(rate_headers(decision))
        return actor

    async def _call(
        self, endpoint: Endpoint, request: Request, uow: UnitOfWork, actor: Actor | None
    ) -> Call:
        body: dict[str, Any] = {}
        files: dict[str, Upload] = {}
        if endpoint.body is not None:
            limit = (
                self.config.max_upload_bytes if endpoint.multipart else self.config.max_body_bytes
            )
            raw = await read_body(request, limit)
            media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
            if endpoint.multipart and media == "multipart/form-data":
                form, files = await parse_multipart(request, raw, limit)
                reject_nul(form)
                body = endpoint.body.parse_body(form)
            else:
                body = endpoint.body.parse_body(parse_json(raw, media))
        reject_nul(dict(request.path_params), "path")
        reject_nul(dict(request.query_params), "query")
        query = endpoint.query.parse_query(request.query_params)
        return Call(
            request=request,
            services=self.services,
            config=self.config,
            uow=uow,
            actor=actor,
            body=body,
            query=query,
            files=files,
        )

    def _render(self, endpoint: Endpoint, result: Any, headers: dict[str, str]) -> Response:
        if isinstance(result, Response):
            result.headers.update(headers)
            return result
        if isinstance(result, Reply):
            merged = {**headers, **dict(result.headers or {})}
            return json_response(result.body, result.status or endpoint.status, merged)
        return json_response(result, endpoint.status, headers)


def _without_uow(call: Call) -> Call:
    return Call(
        request=call.request,
        services=call.services,
        config=call.config,
        uow=None,
        actor=call.maybe_actor,
        body=call.body,
        query=call.query,
        files=call.files,
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) past ``limit`` bytes whether or not a length was declared."""
    too_large = HttpError(
        f"Request body too large (limit {limit} bytes)", status=413, details={"max_bytes": limit}
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, media: str) -> Any:
    """A JSON body. A missing content type is read as JSON (curl without ``-H``), and so is
    curl ``-d``'s form type when the text is JSON, as in the documents' own examples."""
    is_json = media in JSON_TYPES or media.endswith("+json")
    lenient = media in ("", "application/x-www-form-urlencoded")
    if not is_json and not lenient:
        raise HttpError(
            "Content-Type must be application/json",
            status=415,
            details={"content_type": media},
        )
    if not raw.strip():
        return {}
    if lenient and not is_json and raw.lstrip()[:1] not in (b"{", b"["):
        raise HttpError("Content-Type must be application/json", status=415)
    try:
        value = load_json(raw)  # bounded nesting: json.loads alone recurses per level
    except JsonTooDeep as exc:
        raise HttpError(
            f"JSON body nested deeper than {exc.limit} levels",
            status=400,
            details={"max_depth": exc.limit},
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise HttpError(f"Malformed JSON body: {exc}", status=400) from None
    reject_nul(value)
    return value


def reject_nul(value: Any, where: str = "body") -> None:
    """NUL characters are refused everywhere (see :func:`domain.policy.holds_nul`)."""
    if holds_nul(value):
        raise HttpError(f"{where} must not contain NUL characters", status=400)


async def parse_multipart(
    request: Request, raw: bytes, limit: int
) -> tuple[dict[str, Any], dict[str, Upload]]:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_part_size=limit)
    except Exception as exc:  # noqa: BLE001  # the multipart parser raises several unrelated types
        raise HttpError(f"Malformed multipart body: {exc}", status=400) from None
    fields: dict[str, Any] = {}
    files: dict[str, Upload] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        else:
            files[key] = Upload(
                filename=value.filename, content_type=value.content_type, data=await value.read()
            )
    await form.close()
    return fields, files
