"""Operation limits (depth, aliases, tokens, definitions) with bounded parse and validation
caches.

Strawberry's ``QueryDepthLimiter`` / ``MaxAliasesLimiter`` build a new validation-rule class
in their constructor, and extensions are constructed per operation, so the rules differed
on every operation and no validation cache could ever hit: every ``chat`` subscription paid
~3 ms of parsing and validation on the event loop. Here the rule classes are built once at
import, and one extension does what the three limiters did plus bounded LRU caches of the
parsed document and of the validation outcome, keyed by the query text (DESIGN.md asks for
bounded parser/validation caches). Only documents that validated cleanly are cached, so a
cached entry is always "no errors" and no error object is ever shared between operations.

Which operation runs is checked on every request, outside the caches (it depends on the
request's ``operationName``): strawberry runs the first operation of a document that has
several when no name is given, where the GraphQL spec requires an error.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.schema import validate_document

from domain.json_depth import MAX_JSON_DEPTH
from graph.nul_input import nul_input_error

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 4000
MAX_DEFINITIONS = 50  # operations + fragments in one document
CACHE_SIZE = 256  # distinct operation texts; clients send a handful, attackers get evicted
MAX_CACHED_QUERY_CHARS = 20_000  # a longer text is parsed every time, never kept


class ValueDepthRule(ASTValidationRule):
    """Literal lists/objects (a ``JSON`` argument written inline) nested past the JSON
    limit; variables are bounded when the request body is parsed (graph/transport.py)."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._depth = 0
        self._reported = False

    def enter_list_value(self, *_: Any) -> None:
        self._enter()

    def enter_object_value(self, *_: Any) -> None:
        self._enter()

    def leave_list_value(self, *_: Any) -> None:
        self._depth -= 1

    def leave_object_value(self, *_: Any) -> None:
        self._depth -= 1

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_JSON_DEPTH and not self._reported:
            self._reported = True
            self.report_error(
                GraphQLError(f"Input value nested deeper than {MAX_JSON_DEPTH} levels")
            )


_RULES: tuple[type[ASTValidationRule], ...] = (
    depth_rule(MAX_DEPTH, None, None),
    alias_rule(MAX_ALIASES),
    ValueDepthRule,
)


class _Lru:
    """A small LRU map (the event loop is single-threaded, so no lock is needed)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


_DOCUMENTS = _Lru(CACHE_SIZE)  # (query, parse options) -> DocumentNode
_VALID = _Lru(CACHE_SIZE)  # (schema, query, rules) -> True when it validated cleanly


class OperationLimits(SchemaExtension):
    """Depth, alias and token limits; cached parse and validation (see module docstring)."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = MAX_TOKENS
        context.validation_rules = context.validation_rules + _RULES
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query and len(query) <= MAX_CACHED_QUERY_CHARS:
            key = (query, tuple(sorted(context.parse_options.items())))
            document: DocumentNode | None = _DOCUMENTS.get(key)
            if document is None:
                try:
                    document = parse(query, **context.parse_options)
                except GraphQLError:
                    # Left unset: strawberry parses again and reports the error its way.
                    document = None
                else:
                    _DOCUMENTS.put(key, document)
            context.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query, document = context.query, context.graphql_document
        refusal = _operation_choice_error(
            document, _requested_operation(context)
        ) or nul_input_error(query, document, context.variables)
        if refusal is not None:
            context.pre_execution_errors = [refusal]
            yield
            return
        if query and document is not None and len(query) <= MAX_CACHED_QUERY_CHARS:
            schema: GraphQLSchema = context.schema._schema
            key = (schema, query, context.validation_rules)
            if _VALID.get(key) is None:
                errors = validate_document(schema, document, context.validation_rules)
                if errors:
                    context.pre_execution_errors = errors
                    yield
                    return
                _VALID.put(key, True)
            context.pre_execution_errors = []
        yield


def _requested_operation(context: Any) -> str | None:
    """The ``operationName`` the client sent: ``context.operation_name`` falls back to the
    first operation's name, which would hide a missing one."""
    name = getattr(context, "_provided_operation_name", None)
    return name if isinstance(name, str) else None


def _operation_choice_error(document: DocumentNode | None, name: str | None) -> GraphQLError | None:
    """Too many definitions, or several operations and no ``operationName`` to pick one."""
    if document is None:
        return None
    if len(document.definitions) > MAX_DEFINITIONS:
        return GraphQLError(
            f"Document has {len(document.definitions)} definitions; "
            f"the limit is {MAX_DEFINITIONS} operations and fragments"
        )
    if name is None:
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        if operations > 1:
            return GraphQLError(
                "Must provide operation name if query contains multiple operations."
            )
    return None
