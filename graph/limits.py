"""Operation limits (depth, aliases, tokens) with bounded parse and validation caches.

Strawberry's ``QueryDepthLimiter`` / ``MaxAliasesLimiter`` build a new validation-rule class
in their constructor, and extensions are constructed per operation, so the rules differed
on every operation and no validation cache could ever hit: every ``chat`` subscription paid
~3 ms of parsing and validation on the event loop. Here the rule classes are built once at
import, and one extension does what the three limiters did plus bounded LRU caches of the
parsed document and of the validation outcome, keyed by the query text (DESIGN.md asks for
bounded parser/validation caches). Only documents that validated cleanly are cached, so a
cached entry is always "no errors" and no error object is ever shared between operations.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.schema import validate_document

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 4000
CACHE_SIZE = 256  # distinct operation texts; clients send a handful, attackers get evicted
MAX_CACHED_QUERY_CHARS = 20_000  # a longer text is parsed every time, never kept

_RULES: tuple[type[ASTValidationRule], ...] = (
    depth_rule(MAX_DEPTH, None, None),
    alias_rule(MAX_ALIASES),
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
