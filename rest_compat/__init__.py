"""REST compatibility layer: the five documented APIs over the domain services.

Layout
------
* ``endpoint.py`` -- :class:`Endpoint` (one method on one path: declared inputs, handler,
  dialect, docs, rate class, quota) and :class:`Group` (a family's endpoints sharing a
  dialect and an OpenAPI tag); :class:`Call` is what a handler receives.
* ``pipeline.py`` -- the one request pipeline: authenticate (bearer JWT or API key) -> rate
  limit (``X-RateLimit-*`` on every response, 429 + ``Retry-After``) -> body size (413) ->
  content type (415) -> JSON (400) -> declared inputs (400) -> quota -> handler -> commit.
  Errors roll back and render in the route's dialect; unexpected ones are a masked 500.
* ``dialects.py`` -- error bodies/statuses/messages per family (Sentech, Senua, MemoryKit,
  Chat API, OpenAI).
* ``fields.py`` -- :class:`Field` declarations that both validate and write OpenAPI schemas.
* ``openapi.py`` -- ``/api/openapi.json`` and Swagger UI at ``/api/docs`` (local assets).
* families: ``sentech.py``, ``senua.py``, ``memorykit.py``, ``chat_api.py``,
  ``openai_chat.py`` (Sentech + SID completions), ``chat_routes.py`` (Senua chat, MemoryKit
  query/context), ``llm_routes.py`` (models, providers, user LLM configs).
* ``app.py`` -- ``FAMILIES`` (the registry) and :func:`rest_routes`, mounted by
  ``memoria.app.build_app``.

Adding routes
-------------
Routes go to the module of the dialect whose document describes them. Handlers parse
nothing themselves and call ONE domain service::

    from rest_compat.dialects import MEMORYKIT
    from rest_compat.endpoint import Call, Group, Reply
    from rest_compat.fields import INT, STR, Field, arr, fields, obj

    async def delete_pattern(call: Call) -> Reply:
        \"\"\"Delete a pattern\"\"\"            # first docstring line = OpenAPI summary
        service = call.services.patterns
        await service.delete(uow=call.uow, actor=call.actor, pattern_id=call.path["id"])
        return Reply(None, status=204)

    def endpoints(limits):
        group = Group(dialect=MEMORYKIT, tag="MemoryKit")
        group.delete("/v1/patterns/{id}", delete_pattern, status=204, errors=(401, 404))
        group.get("/v1/patterns", list_patterns,
                  query=fields(Field("page", "integer", default=1, minimum=1),
                               Field("pageSize", "integer", default=10, minimum=1,
                                     maximum=limits.max_page)),
                  response=obj(["items"], items=arr(obj([], id=STR)), totalCount=INT))
        return group.endpoints

A new family's module adds its ``endpoints`` to ``FAMILIES`` in ``rest_compat/app.py``.
Inputs arrive validated in ``call.body`` / ``call.query`` (absent optional fields are
``None`` or their ``default``), path parameters in ``call.path``. Set
``rate_class=domain.rate_policy.SYNC`` for sync triggers (10/min), ``quota=lambda call:
{"conversations": 1}`` for writes a tier quota counts, ``own_transactions=True`` when the
service opens its own units of work (streams), ``auth=False`` for open routes. Raise domain
errors; the dialect maps them. The pipeline commits ``call.uow`` after the handler returns.
The OpenAPI document picks the route up automatically, and
``tests/rest_compat/test_openapi.py`` fuzzes it.

Rate limits in tests: the default free tier is 10 requests/minute, so REST tests should run
on settings from ``rest_helpers.roomy(settings)`` (the ``rest_server`` fixture does).
"""
