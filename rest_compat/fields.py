"""Declared inputs: one list of :class:`Field` per route both validates requests and writes
the OpenAPI schema, so the document and the behaviour cannot drift.

Validation is strict about types (``"5"`` is not an integer in a JSON body, ``true`` is not a
number) and reports the first problem as ``BadUserInput`` with the documented message where
the document fixes one (``missing=``). Unknown fields are ignored (OpenAI clients send many).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.errors import BadUserInput

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


@dataclass(frozen=True)
class Field:
    """One input. ``kind`` is a JSON Schema type or ``"date-time"`` (an ISO 8601 string)."""

    name: str
    kind: str = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    missing: str | None = None  # message when absent, null or blank (documents fix some)
    wrong_type: str | None = None  # message for a value of the wrong JSON type, if fixed
    # date-time upper bounds: a bare date ("2025-01-15") includes that whole day.
    end_of_day: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    items: str | None = None  # element kind of an array
    enum: tuple[str, ...] = ()
    example: Any = None
    schema: Mapping[str, Any] | None = None  # extra schema keywords (nested objects)

    def missing_message(self) -> str:
        return self.missing or f"{self.name} is required"

    def problem(self, message: str) -> BadUserInput:
        return BadUserInput(message, details={"field": self.name})

    def check(self, value: Any) -> Any:
        """A present, non-null JSON value, checked and normalised."""
        kind = "string" if self.kind == "date-time" else self.kind
        if not _is(value, kind):
            raise self.problem(self.wrong_type or f"{self.name} must be {_article(self.kind)}")
        if kind == "string":
            if self.required and not value.strip():
                raise self.problem(self.missing_message())
            if self.max_length is not None and len(value) > self.max_length:
                raise self.problem(f"{self.name} must be at most {self.max_length} characters")
            if self.enum and value not in self.enum:
                raise self.problem(f"{self.name} must be one of {', '.join(self.enum)}")
            if self.kind == "date-time":
                return parse_datetime(value, name=self.name, end_of_day=self.end_of_day)
        if kind in ("integer", "number"):
            if isinstance(value, float) and not math.isfinite(value):
                raise self.problem(f"{self.name} must be a finite number")
            self._range(value)
        if kind == "array":
            if self.required and not value:
                raise self.problem(self.missing_message())
            if self.items and not all(_is(v, self.items) for v in value):
                raise self.problem(f"{self.name} must be an array of {self.items}s")
        return value

    def _range(self, value: float) -> None:
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                raise self.problem(f"{self.name} must be between {_num(low)} and {_num(high)}")
            if low is not None:
                raise self.problem(f"{self.name} must be at least {_num(low)}")
            raise self.problem(f"{self.name} must be at most {_num(high or 0)}")

    def from_query(self, raw: str) -> Any:
        """Query strings are text: convert to the declared kind first."""
        if self.kind == "integer":
            try:
                return self.check(int(raw.strip()))
            except ValueError:
                raise self.problem(f"{self.name} must be an integer") from None
        if self.kind == "number":
            try:
                return self.check(float(raw.strip()))
            except ValueError:
                raise self.problem(f"{self.name} must be a number") from None
        if self.kind == "boolean":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise self.problem(f"{self.name} must be true or false")
            return lowered in ("true", "1")
        return self.check(raw)

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any]
        if self.kind == "any":
            schema = {"description": self.description} if self.description else {}
            schema.update(self.schema or {})
            return schema
        if self.kind == "date-time":
            schema = {"type": "string", "format": "date-time"}
        else:
            schema = {"type": self.kind}
        if self.kind == "array":
            schema["items"] = {"type": self.items} if self.items else {}
        if self.description:
            schema["description"] = self.description
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.required and self.kind == "string":
            schema["minLength"] = 1
            schema["pattern"] = r"\S"
        if self.required and self.kind == "array":
            schema["minItems"] = 1
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.default is not None:
            schema["default"] = self.default
        if self.example is not None:
            schema["example"] = self.example
        if not self.required:
            schema["nullable"] = True
        schema.update(self.schema or {})
        return schema


def _is(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if isinstance(value, bool) and kind != "boolean":
        return False
    expected = _JSON_TYPES.get(kind)
    return expected is not None and isinstance(value, expected)


def _article(kind: str) -> str:
    words = {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "a boolean",
        "object": "an object",
        "array": "an array",
        "date-time": "an ISO 8601 date-time string",
    }
    return words.get(kind, kind)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_datetime(raw: str, *, name: str, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time (UTC unless it says otherwise). A bare date is its
    first instant, or with ``end_of_day`` its last (an inclusive upper bound)."""
    from datetime import UTC, date, time

    text = raw.strip()
    if end_of_day and len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return datetime.combine(day, time.max, tzinfo=UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadUserInput(
            f"{name} must be an ISO 8601 date or date-time", details={"field": name}
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Fields:
    """An ordered set of inputs (a JSON body or a query string)."""

    items: tuple[Field, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # extra object-schema keywords

    def parse_body(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise BadUserInput("Request body must be a JSON object")
        return self._parse(raw, lambda f, v: f.check(v))

    def parse_query(self, raw: Mapping[str, str]) -> dict[str, Any]:
        return self._parse(raw, lambda f, v: f.from_query(v))

    def _parse(self, raw: Mapping[str, Any], convert: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in self.items:
            value = raw.get(spec.name)
            if value is None or (spec.required and value == ""):
                if spec.required:
                    raise spec.problem(spec.missing_message())
                out[spec.name] = spec.default
                continue
            out[spec.name] = convert(spec, value)
        return out

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.items},
        }
        required = [f.name for f in self.items if f.required]
        if required:
            schema["required"] = required
        schema.update(self.extra)
        return schema

    def __iter__(self) -> Any:
        return iter(self.items)


def fields(*items: Field, **extra: Any) -> Fields:
    return Fields(items=tuple(items), extra=extra)


def obj(required: Sequence[str] = (), **properties: Any) -> dict[str, Any]:
    """A response-object schema, briefly: ``obj(["id"], id=STR, count=INT)``."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def arr(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
OBJ: dict[str, Any] = {"type": "object"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
NULL_TIME: dict[str, Any] = {"type": "string", "format": "date-time", "nullable": True}
NULL_STR: dict[str, Any] = {"type": "string", "nullable": True}
STRS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
