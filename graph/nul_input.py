"""NUL characters are refused in every GraphQL input, as REST refuses them in every body:
PostgreSQL text cannot hold them (a NUL in an id reached the database as a 500), and no
field of the API needs one."""

from __future__ import annotations

from typing import Any

from graphql import DocumentNode, GraphQLError, StringValueNode, visit
from graphql.language import Visitor

from domain.policy import holds_nul

MESSAGE = "Input must not contain NUL characters"


class _FindNul(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> Any:
        if "\x00" in node.value:
            self.found = True
            return Visitor.BREAK
        return None


def nul_input_error(
    query: str | None, document: DocumentNode | None, variables: Any
) -> GraphQLError | None:
    """A BAD_USER_INPUT error when a string literal of ``document`` or any variable holds a
    NUL; None otherwise. The document is walked only when its text could hold one (a raw
    NUL or a ``\\u0000`` escape), so ordinary operations pay one substring search."""
    in_document = False
    if document is not None and query and ("\x00" in query or "\\u0000" in query):
        finder = _FindNul()
        visit(document, finder)
        in_document = finder.found
    if in_document or holds_nul(variables):
        return GraphQLError(MESSAGE, extensions={"code": "BAD_USER_INPUT"})
    return None
