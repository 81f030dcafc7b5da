"""What a REST route is: an :class:`Endpoint` (declared inputs, a handler, a dialect and its
documentation) and the :class:`Call` a handler receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from domain.entities import Actor
from domain.ports import UnitOfWork
from domain.services.registry import Services
from rest_compat.dialects import Dialect
from rest_compat.fields import Fields


@dataclass(frozen=True)
class RestConfig:
    """Edge settings the composition root passes in (from ``memoria.settings``)."""

    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    default_namespace: str = "default"
    title: str = "Memoria REST compatibility API"
    version: str = "0.1.0"


@dataclass(frozen=True)
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Reply:
    """A JSON answer with an explicit status (handlers may also return a plain dict/list,
    answered with the endpoint's ``status``, or any Starlette ``Response``)."""

    body: Any
    status: int | None = None
    headers: Mapping[str, str] | None = None


class Call:
    """One request as a handler sees it: validated inputs, the caller and the services."""

    def __init__(
        self,
        *,
        request: Request,
        services: Services,
        config: RestConfig,
        uow: UnitOfWork | None,
        actor: Actor | None,
        body: dict[str, Any],
        query: dict[str, Any],
        files: dict[str, Upload],
    ) -> None:
        self.request = request
        self.services = services
        self.config = config
        self._uow = uow
        self._actor = actor
        self.body = body
        self.query = query
        self.files = files
        self.path: dict[str, str] = dict(request.path_params)

    @property
    def uow(self) -> UnitOfWork:
        if self._uow is None:
            raise RuntimeError("this endpoint runs its own transactions (own_transactions=True)")
        return self._uow

    @property
    def actor(self) -> Actor:
        if self._actor is None:
            raise RuntimeError("anonymous endpoint has no actor")
        return self._actor

    @property
    def maybe_actor(self) -> Actor | None:
        return self._actor


Handler = Callable[[Call], Awaitable[Any]]
Quota = Callable[[Call], Mapping[str, int]]


@dataclass(frozen=True)
class Endpoint:
    """One method on one path.

    * ``body``/``query``: declared inputs, validated before the handler runs and written into
      the OpenAPI document; ``multipart`` also accepts ``multipart/form-data`` (its text
      parts are validated like a JSON body, its files land in ``call.files``).
    * ``response``: JSON Schema of the success body (``status``), for OpenAPI.
    * ``auth``: a bearer token is required (JWT or API key) unless False.
    * ``rate_class``: the budget this route counts against (see ``domain.rate_policy``);
      ``None`` counts against the user's tier.
    * ``quota``: what a success would add (``{"conversations": 1}``), checked first.
    * ``own_transactions``: the handler's service opens its own units of work (streaming
      chat); the pipeline commits auth/rate-limit work before calling it.
    """

    method: str
    path: str
    handler: Handler
    dialect: Dialect
    summary: str
    tag: str
    body: Fields | None = None
    query: Fields = field(default_factory=Fields)
    response: Mapping[str, Any] | None = None
    status: int = 200
    auth: bool = True
    rate_class: str | None = None
    quota: Quota | None = None
    multipart: bool = False
    streams: bool = False
    own_transactions: bool = False
    errors: tuple[int, ...] = (400, 401, 404)
    description: str = ""
    response_content_type: str = "application/json"


@dataclass
class Group:
    """Endpoints of one API family: shares a dialect and an OpenAPI tag.

    ``group.post("/path", handler, summary=..., body=fields(...), response=obj(...))``
    """

    dialect: Dialect
    tag: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def add(self, method: str, path: str, handler: Handler, **options: Any) -> Endpoint:
        options.setdefault("summary", (handler.__doc__ or handler.__name__).strip().split("\n")[0])
        endpoint = Endpoint(
            method=method, path=path, handler=handler, dialect=self.dialect, tag=self.tag, **options
        )
        self.endpoints.append(endpoint)
        return endpoint

    def get(self, path: str, handler: Handler, **options: Any) -> Endpoint:
        return self.add("GET", path, handler, **options)

    def post(self, path: str, handler: Handler, **options: Any) -> Endpoint:
        return self.add("POST", path, handler, **options)

    def delete(self, path: str, handler: Handler, **options: Any) -> Endpoint:
        return self.add("DELETE", path, handler, **options)

    def put(self, path: str, handler: Handler, **options: Any) -> Endpoint:
        return self.add("PUT", path, handler, **options)

    def patch(self, path: str, handler: Handler, **options: Any) -> Endpoint:
        return self.add("PATCH", path, handler, **options)


Responder = Callable[[Request], Awaitable[Response]]
