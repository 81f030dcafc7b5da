"""The export file's record kinds and how a table row becomes a JSON record and back.

An export is JSON Lines: a ``header`` record, then one record per row (users, fields,
memories, ...) in an order where every row comes after the rows it refers to, then an
``end`` record with the counts. A record is its table's columns by name, plus ``type``.
Times are ISO 8601 in UTC; a memory's vector is base64 of little-endian float32, with the
name of the embedder that made it; an uploaded attachment's bytes are a ``blob`` record
(base64, checked against its SHA-256 on import). Secrets never appear: users carry no
password hash, TOTP secret or balance, and the tables of API keys, provider keys, webhooks
and data sources are not exported.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy import JSON, Boolean, Column, Float, Integer, LargeBinary, String, Table

from domain.entities import ChangeKind, MemoryKind, MemoryLayer, MessageRole, Role, Tier
from domain.patterns import PatternChangeKind, PatternKind, PatternStatus
from persistence.tables.accounts import users
from persistence.tables.conversations import attachments, blobs, conversations, messages
from persistence.tables.memories import memories, memory_fields, memory_history
from persistence.tables.patterns import pattern_history, patterns
from persistence.types import Embedding, UTCDateTime

FORMAT = "memoria-export"
FORMAT_VERSION = 1


class RecordError(ValueError):
    """A line of an export file that cannot be imported; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class RecordKind:
    """One ``type`` of record: the table it copies and the columns it leaves out."""

    name: str
    table: Table
    omitted: frozenset[str] = frozenset()
    enums: Mapping[str, type[StrEnum]] = field(default_factory=dict)
    page_size: int = 0  # rows per export page; 0: the exporter's default

    @cached_property
    def key(self) -> list[Column[Any]]:
        """The columns that identify a row (its primary key): pages follow their order, and
        an import skips rows whose key is there already."""
        return list(self.table.primary_key.columns)

    @cached_property
    def columns(self) -> list[Column[Any]]:
        return [c for c in self.table.c if c.name not in self.omitted]

    @cached_property
    def checks(self) -> list[tuple[str, bool, Check]]:
        """(column, required, check) for decoding; the vector is the importer's to decide."""
        return [
            (c.name, not c.nullable, _checker(c, self.enums.get(c.name)))
            for c in self.columns
            if not isinstance(c.type, Embedding)
        ]

    @cached_property
    def codecs(self) -> list[tuple[str, str]]:
        """(column, how its value is written): "vector", "time", "bytes" or "plain"."""
        return [
            (
                c.name,
                "vector"
                if isinstance(c.type, Embedding)
                else "time"
                if isinstance(c.type, UTCDateTime)
                else "bytes"
                if isinstance(c.type, LargeBinary)
                else "plain",
            )
            for c in self.columns
        ]


# In file order: a row's parents (user, field, conversation) always come before it.
KINDS = (
    # No password hash, TOTP secret or balance: an account is recreated without credentials.
    RecordKind(
        "user",
        users,
        frozenset({"password_hash", "mfa_secret", "balance_micros"}),
        {"role": Role, "tier": Tier},
    ),
    # Uploaded bytes, few per page: one can be megabytes.
    RecordKind("blob", blobs, page_size=16),
    RecordKind("field", memory_fields),
    RecordKind("memory", memories, enums={"kind": MemoryKind, "layer": MemoryLayer}),
    RecordKind("memory_change", memory_history, enums={"change": ChangeKind}),
    RecordKind("conversation", conversations),
    RecordKind("message", messages, enums={"role": MessageRole}),
    RecordKind("attachment", attachments),
    RecordKind("pattern", patterns, enums={"kind": PatternKind, "status": PatternStatus}),
    RecordKind("pattern_change", pattern_history, enums={"change": PatternChangeKind}),
)
BY_NAME = {kind.name: kind for kind in KINDS}


def encode_vector(vector: Any) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: object, line: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    if not isinstance(text, str):
        raise RecordError(line, "vector must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise RecordError(line, "vector is not valid base64") from None
    if not raw or len(raw) % 4:
        raise RecordError(line, "vector is not a whole number of float32 values")
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise RecordError(line, "vector holds a value that is not a finite number")
    return vector


def encode(kind: RecordKind, row: Sequence[Any], *, embedder: str | None = None) -> dict[str, Any]:
    """A row of ``kind.columns`` as a record (``embedder``: the field's, for a memory's
    vector). Times are UTC already (``UTCDateTime``)."""
    record: dict[str, Any] = {"type": kind.name}
    for (name, codec), value in zip(kind.codecs, row, strict=True):
        if codec == "plain" or (codec == "time" and value is None):
            record[name] = value
        elif codec == "time":
            record[name] = value.isoformat()
        elif codec == "bytes":
            record[name] = base64.b64encode(value).decode("ascii")
        else:
            record["vector"] = None if value is None else encode_vector(value)
            record["embedder"] = embedder
    return record


def _timestamp(value: object, name: str, line: int) -> datetime:
    if not isinstance(value, str):
        raise RecordError(line, f"{name} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(line, f"{name} is not an ISO 8601 time: {value[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


Check = Callable[[Any, int], Any]  # (value, line) -> the column's value, or RecordError


def _checker(column: Column[Any], enum: type[StrEnum] | None) -> Check:
    """The check of one column's values, chosen once per column (an import runs it for
    every value of every record)."""
    name, kind = column.name, column.type
    if isinstance(kind, UTCDateTime):
        return lambda value, line: _timestamp(value, name, line)
    if isinstance(kind, Boolean):

        def boolean(value: Any, line: int) -> Any:
            if not isinstance(value, bool):
                raise RecordError(line, f"{name} must be true or false")
            return value

        return boolean
    if isinstance(kind, Integer):  # BigInteger is an Integer

        def integer(value: Any, line: int) -> Any:
            if isinstance(value, bool) or not isinstance(value, int):
                raise RecordError(line, f"{name} must be an integer")
            return value

        return integer
    if isinstance(kind, Float):

        def number(value: Any, line: int) -> Any:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RecordError(line, f"{name} must be a number")
            if not math.isfinite(value):
                raise RecordError(line, f"{name} must be a finite number")
            return float(value)

        return number
    if isinstance(kind, String):  # Text is a String
        longest = kind.length
        allowed = None if enum is None else frozenset(e.value for e in enum)

        def string(value: Any, line: int) -> Any:
            if not isinstance(value, str):
                raise RecordError(line, f"{name} must be a string")
            if longest is not None and len(value) > longest:
                raise RecordError(line, f"{name} is longer than {longest} characters")
            if allowed is not None and value not in allowed:
                raise RecordError(line, f"{name} {value[:40]!r} is not one of the known values")
            return value

        return string
    if isinstance(kind, JSON):
        return lambda value, _line: value
    if isinstance(kind, LargeBinary):

        def data(value: Any, line: int) -> Any:
            if not isinstance(value, str):
                raise RecordError(line, f"{name} must be a base64 string")
            try:
                return base64.b64decode(value, validate=True)
            except ValueError:
                raise RecordError(line, f"{name} is not valid base64") from None

        return data
    raise AssertionError(f"no record codec for column {column}")  # a new column type


def decode(kind: RecordKind, record: Mapping[str, Any], line: int) -> dict[str, Any]:
    """A record's column values, checked against the table (a memory's ``vector`` and
    ``embedder`` stay as they are in the record, for the importer to decide on)."""
    values: dict[str, Any] = {}
    for name, required, check in kind.checks:
        value = record.get(name)
        if value is None:
            if required:
                raise RecordError(line, f"{kind.name} record lacks {name}")
            values[name] = None
        else:
            values[name] = check(value, line)
    if kind.table is blobs:
        # A damaged copy must not hand a user other bytes under a digest they trust.
        data = values["data"]
        if hashlib.sha256(data).hexdigest() != values["sha256"] or len(data) != values["size"]:
            raise RecordError(line, "blob data does not match its sha256 and size")
    return values
