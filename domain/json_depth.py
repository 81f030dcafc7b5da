"""How deeply JSON text nests, measured without recursion, and a JSON loader bounded by it.

Python's ``json`` recurses once per nested array or object, so ``[[[[...]]]]`` a few thousand
levels deep raises ``RecursionError`` (a 500) instead of a parse error, and whatever walks
the decoded value recursively afterwards (NUL checks, the GraphQL ``JSON`` scalar,
serialisers) would fail the same way. Every JSON input from the network is therefore
measured first, on its raw text, with C-level bytes operations only (O(n): microseconds
for ordinary bodies, tens of milliseconds for a pathological 1 MiB one, about what
``json.loads`` itself costs), and refused past :data:`MAX_JSON_DEPTH`. REST and GraphQL
both use it, so the limit cannot drift between the surfaces.
"""

from __future__ import annotations

import json
from array import array
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects accepted in any JSON input (request bodies, GraphQL
variables, WebSocket messages). Real documents stay far below it; it exists so that no
input can exhaust the interpreter's recursion limit."""

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
# Opener -> +1, closer -> -1 (0xFF read as a signed byte by array("b")).
_STEPS = bytes.maketrans(b"[]", b"\x01\xff")
_REDUCTION_PASSES = 4


class JsonTooDeep(ValueError):
    """JSON input nested deeper than the limit (a client error, never a crash)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def nesting_depth(raw: bytes | str) -> int:
    """The deepest nesting of arrays/objects in ``raw``, brackets inside strings ignored.

    Exact for well-formed JSON; for malformed text it is never less than the depth a
    parser would reach before failing (unbalanced brackets may make it larger), so
    ``nesting_depth(raw) <= limit`` is a safe precondition for ``json.loads``.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    # Escapes pair left to right: drop "\\" first, then every remaining \" is an escaped
    # quote, and the unescaped quotes left split the text into outside/inside strings.
    # Outside strings a backslash is invalid JSON, where a parser stops anyway.
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(data.split(b'"')[::2]).translate(_OPENERS_AS_SQUARE, _NOT_BRACKETS)
    # Removing every adjacent "[]" lowers the maximum by at most one per pass (exactly one
    # for balanced text); cheap passes first make the exact count below short.
    passes = 0
    while passes < _REDUCTION_PASSES and len(brackets) > 64:
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) * 2 > len(brackets):
            break
        brackets, passes = reduced, passes + 1
    if not brackets:
        return passes
    levels = accumulate(array("b", brackets.translate(_STEPS)))
    return passes + max(0, max(levels))


def check_json_depth(raw: bytes | str, *, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JsonTooDeep` when ``raw`` nests deeper than ``limit``."""
    if nesting_depth(raw) > limit:
        raise JsonTooDeep(limit)


def load_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that cannot recurse past ``max_depth``.

    Bytes must be UTF-8 (a leading BOM is tolerated); raises :class:`JsonTooDeep`,
    ``UnicodeDecodeError`` or ``json.JSONDecodeError``, all ``ValueError``.
    """
    check_json_depth(raw, limit=max_depth)
    text = raw if isinstance(raw, str) else raw.decode("utf-8-sig")
    return json.loads(text)
