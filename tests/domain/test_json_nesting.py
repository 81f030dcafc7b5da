"""The recursion-free nesting measure behind every JSON input's depth limit."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from domain.json_depth import (
    MAX_JSON_DEPTH,
    JsonTooDeep,
    check_json_depth,
    load_json,
    nesting_depth,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


SAMPLES: list[Any] = [
    1,
    "text",
    [],
    {},
    [[], {}],
    {"a": [1, {"b": [[]]}]},
    ["[[[", "]]]", "{{", '"[', "\\", "\\[", '\\"[['],
    {"k[": {'q"{': ["x\\\\", {"z\\": []}]}},
    [[[[[]]]], [[]]] * 40,
    {"a": [1, 2, {"b": "x[y"}]} | {f"k{i}": [[i]] for i in range(100)},
]


@pytest.mark.parametrize("value", SAMPLES)
def test_depth_is_exact_for_well_formed_json(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert nesting_depth(text) == _depth(value), text
        assert nesting_depth(text.encode()) == _depth(value), text


def test_brackets_in_strings_and_escapes_do_not_count() -> None:
    assert nesting_depth('["' + "[" * 1000 + '"]') == 1
    assert nesting_depth(r'["\\", [["\"[[["]]]') == 3
    assert nesting_depth(r'["\\\"[[[", []]') == 2


def test_malformed_text_is_never_under_counted() -> None:
    assert nesting_depth("[" * 5000) == 5000
    assert nesting_depth("[" * 100 + '"unterminated [[[') >= 100
    assert nesting_depth("]]]]") == 0


def test_load_json_refuses_past_the_limit_and_parses_up_to_it() -> None:
    fits = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert _depth(load_json(fits)) == MAX_JSON_DEPTH
    with pytest.raises(JsonTooDeep) as refused:
        load_json("[" + fits + "]")
    assert refused.value.limit == MAX_JSON_DEPTH
    with pytest.raises(JsonTooDeep):
        check_json_depth(b'{"a": {"b": 1}}', limit=1)
    assert load_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # a UTF-8 BOM is tolerated
    with pytest.raises(UnicodeDecodeError):
        load_json(b'{"a": "\xff"}')
    with pytest.raises(json.JSONDecodeError):
        load_json("{")


@pytest.mark.parametrize(
    "body",
    [
        b"[" + b"[]," * 333_333 + b"[]]",  # a million brackets, shallow
        b"[" + (b"[" * 60 + b"]" * 60 + b",") * 8_000 + b"1]",  # deep and wide
        b'["' + b'a\\"' * 300_000 + b'"]',  # escape-heavy string
        b"[" * 500_000 + b"]" * 500_000,  # as deep as a megabyte allows
    ],
)
def test_a_megabyte_is_measured_quickly(body: bytes) -> None:
    started = time.perf_counter()
    nesting_depth(body)
    # ~10-60 ms on a laptop; generous for a loaded CI machine, still far from quadratic.
    assert time.perf_counter() - started < 1.5
