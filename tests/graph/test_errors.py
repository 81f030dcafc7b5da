"""Error mapping at the GraphQL edge."""

from __future__ import annotations

from graphql import GraphQLError

from domain.errors import InsufficientBalance, NotFound, RateLimited
from graph.extensions import format_error


def _wrap(exc: Exception) -> GraphQLError:
    return GraphQLError(str(exc), original_error=exc, path=["field"])


def test_domain_errors_keep_message_and_code() -> None:
    formatted = format_error(_wrap(NotFound("Memory not found")))
    assert formatted.message == "Memory not found"
    assert formatted.extensions == {"code": "NOT_FOUND"}
    assert format_error(_wrap(InsufficientBalance("no money"))).extensions == {
        "code": "INSUFFICIENT_BALANCE"
    }
    limited = format_error(_wrap(RateLimited("slow down", retry_after=7)))
    assert limited.extensions == {
        "code": "RATE_LIMITED",
        "retryAfter": 7,
        "details": {"retry_after": 7},
    }


def test_unexpected_errors_are_masked() -> None:
    secret = "password=hunter2 at db host"
    formatted = format_error(_wrap(RuntimeError(secret)))
    assert formatted.message == "Internal server error"
    assert formatted.extensions == {"code": "INTERNAL"}
    assert secret not in str(formatted.formatted)


def test_validation_errors_are_bad_user_input() -> None:
    formatted = format_error(GraphQLError("Cannot query field 'nope' on type 'Query'."))
    assert formatted.extensions == {"code": "BAD_USER_INPUT"}
