"""The in-process field indexes' shared life cycle (persistence/field_store.py), with a
store whose indexes are plain lists read from a dict instead of the database: built once in
the background, changes committed during a build replayed, a failed build leaving SQL to
answer, and the least recently searched fields dropped past the budget."""

from __future__ import annotations

import asyncio
from typing import Any

from persistence.field_store import FieldStore


class ListStore(FieldStore[list[str], str]):
    """Each field's index is the list of its rows; a change appends one."""

    def __init__(self, rows: dict[str, list[str]], *, budget: int = 100) -> None:
        super().__init__(engine=Any, budget=budget)  # type: ignore[arg-type]  # never used here
        self.rows = rows
        self.loads: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def _load(self, field_id: str) -> list[str]:
        self.loads.append(field_id)
        found = list(self.rows[field_id])  # KeyError: a failed build
        await self.gate.wait()
        return found

    def _change(self, field_id: str, index: list[str], change: str) -> None:
        index.append(change)


async def test_a_field_is_built_once_and_changes_meanwhile_are_replayed() -> None:
    store = ListStore({"a": ["r1"]})
    store.gate.clear()
    store.build("a")
    store.build("a")  # under way: not started again
    await asyncio.sleep(0)
    store.apply([("a", "r2"), ("b", "elsewhere")])
    assert store.get("a") is None  # not ready: SQL answers
    store.gate.set()
    await store.settled()
    assert store.loads == ["a"]
    assert store.get("a") == ["r1", "r2"]
    store.apply([("a", "r3")])
    assert store.get("a") == ["r1", "r2", "r3"]


async def test_a_failed_build_leaves_the_field_to_sql_and_may_be_tried_again() -> None:
    store = ListStore({})
    store.build("missing")
    await store.settled()
    assert store.get("missing") is None
    store.rows["missing"] = ["r1"]
    store.build("missing")
    await store.settled()
    assert store.get("missing") == ["r1"]


async def test_the_least_recently_searched_fields_go_past_the_budget() -> None:
    store = ListStore({"a": ["x"] * 4, "b": ["x"] * 4, "c": ["x"] * 4}, budget=9)
    for field_id in ("a", "b"):
        store.build(field_id)
        await store.settled()
    assert store.get("a") is not None  # a was searched after b
    store.build("c")
    await store.settled()
    assert store.get("b") is None  # 12 entries > 9: b, the least recent, went
    assert store.get("a") is not None
    assert store.get("c") is not None
    store.forget("c")
    assert store.get("c") is None


async def test_a_budget_of_zero_builds_nothing() -> None:
    store = ListStore({"a": ["r1"]}, budget=0)
    store.build("a")
    await store.settled()
    assert store.loads == []
    assert store.get("a") is None  # SQL answers every search
