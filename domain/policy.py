"""Limits and input rules shared by every surface, so GraphQL and REST cannot drift."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.errors import BadUserInput

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")


@dataclass(frozen=True, slots=True)
class Limits:
    """Configurable bounds; the defaults suit a single-machine deployment."""

    max_content_chars: int = 32_000
    max_batch: int = 1_000
    max_top_k: int = 100
    max_page: int = 100
    max_name_chars: int = 200
    max_tags: int = 50
    min_password_chars: int = 8


def holds_nul(value: Any) -> bool:
    """Whether a decoded JSON input (strings, keys, lists, objects) holds a NUL character.
    Both edges refuse such input: PostgreSQL text cannot hold NUL, and no field needs one."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def require_text(value: str | None, *, name: str, max_chars: int) -> str:
    """Strip and check a required text input; empty or over-long is BAD_USER_INPUT."""
    text = (value or "").strip()
    if not text:
        raise BadUserInput(f"{name} is required", details={"field": name})
    if len(text) > max_chars:
        raise BadUserInput(
            f"{name} is too long ({len(text)} > {max_chars} characters)",
            details={"field": name, "max": max_chars},
        )
    if not text.isascii():
        try:
            # JSON may escape a lone surrogate ("\ud800"), which is no character: it could
            # be neither hashed nor stored as UTF-8.
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadUserInput(
                f"{name} is not valid Unicode text (a lone surrogate)", details={"field": name}
            ) from None
    return text


def check_username(username: str) -> str:
    name = username.strip()
    if not _USERNAME.match(name):
        raise BadUserInput(
            "username must be 3-64 letters, digits, '_', '.' or '-'", details={"field": "username"}
        )
    return name


def check_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 254:
        raise BadUserInput("email is not a valid address", details={"field": "email"})
    return value


def check_password(password: str, *, limits: Limits) -> str:
    if len(password) < limits.min_password_chars:
        raise BadUserInput(
            f"password must have at least {limits.min_password_chars} characters",
            details={"field": "password"},
        )
    if len(password) > 1024:
        raise BadUserInput("password is too long", details={"field": "password"})
    return password


def check_top_k(top_k: int, *, limits: Limits) -> int:
    if top_k < 1 or top_k > limits.max_top_k:
        raise BadUserInput(
            f"topK must be between 1 and {limits.max_top_k}", details={"field": "topK"}
        )
    return top_k


def check_page_size(first: int, *, limits: Limits, name: str = "first") -> int:
    if first < 1 or first > limits.max_page:
        raise BadUserInput(
            f"{name} must be between 1 and {limits.max_page}", details={"field": name}
        )
    return first


def check_tags(tags: list[str] | None, *, limits: Limits) -> list[str]:
    cleaned = [t.strip() for t in tags or [] if t and t.strip()]
    if len(cleaned) > limits.max_tags:
        raise BadUserInput(f"at most {limits.max_tags} tags", details={"field": "tags"})
    return list(dict.fromkeys(cleaned))
