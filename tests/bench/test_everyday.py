"""The everyday-questions suite (bench/everyday.py, bench/everyday_data.json): its data keeps
its shape, and the shipped engine with the real MiniLM embedder keeps its precision@1 on the
tune split. The held-out split is never scored here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_modules import load_bench

# The engine's tune-split figures (minilm, top_k 5, 81 fields / 259 questions): P@1 0.792
# when the suite was written, 0.842 with coverage-scored, family-matched keywords muted in
# small fields, 0.900 with keywords and feedback weighed by how far a small field's
# statistics are trusted (``small_field="backed"``) and recurring weekdays and clock times
# counted as stated times. The floor is today's less 0.03, so a ranking change that loses
# about eight tune questions fails here. Raise it when the engine gets better; never tune on
# the held-out fields.
P_AT_1_FLOOR = 0.87


everyday = load_bench("everyday")


@pytest.fixture(scope="module")
def fields() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = everyday.load()
    return loaded


def test_data_has_its_shape(fields: list[dict[str, Any]]) -> None:
    assert everyday.validate(fields) == []
    assert len(fields) >= 100
    for field in fields:
        assert 3 <= len(field["memories"]) <= 30, field["id"]
        assert 1 <= len(field["questions"]) <= 4, field["id"]
        for q in field["questions"]:
            assert all(0 <= a < len(field["memories"]) for a in q["answers"]), q
    heldout = [f for f in fields if f["split"] == "heldout"]
    assert len(heldout) * 4 == len(fields)
    assert {f["split"] for f in fields} == {"tune", "heldout"}
    assert [f["id"] for f in heldout] == [f["id"] for f in fields[3::4]]


def test_the_allergy_example_is_a_tune_field(fields: list[dict[str, Any]]) -> None:
    field = next(f for f in fields if "I am allergic to peanuts and shellfish." in f["memories"])
    assert field["split"] == "tune"
    assert len(field["memories"]) == 5
    allergy = field["memories"].index("I am allergic to peanuts and shellfish.")
    asked = {q["question"]: q["answers"] for q in field["questions"]}
    assert asked["Which foods must I avoid because of allergies?"] == [allergy]
    assert asked["food allergies"] == [allergy]


def test_validate_reports_broken_data(fields: list[dict[str, Any]]) -> None:
    broken = [dict(f) for f in fields]
    broken[0] = {**broken[0], "questions": [{"question": "where?", "answers": [99]}]}
    broken[1] = {**broken[1], "split": "heldout"}
    broken[2] = {**broken[2], "memories": ["only", "two"]}
    problems = everyday.validate(broken)
    assert any("out of range" in p for p in problems)
    assert any("split" in p for p in problems)
    assert any("2 memories" in p for p in problems)


@pytest.fixture(scope="module")
def minilm() -> Iterator[Any]:
    model = everyday.make_embedder("minilm")
    yield model
    model.close()


async def test_tune_split_precision_with_minilm(
    fields: list[dict[str, Any]], minilm: Any, tmp_path: Path
) -> None:
    tune = everyday.select(fields, "tune")
    async with everyday.open_runtime(tmp_path, embedder=minilm) as (runtime, actor):
        outcomes, merged = await everyday.score(runtime, actor, tune)
    assert merged == 0, "near-duplicate memories were merged: the data no longer tests them"
    assert {o.split for o in outcomes} == {"tune"}
    assert len(outcomes) == sum(len(f["questions"]) for f in tune)
    scores = everyday.summarise(outcomes)["tune"]
    assert scores["p@1"] >= P_AT_1_FLOOR, (
        f"tune P@1 {scores['p@1']:.3f} < floor {P_AT_1_FLOOR} "
        f"(R@3 {scores['r@3']:.3f}, MRR {scores['mrr']:.3f}); "
        "see `.venv/bin/python bench/everyday.py --split tune --show-failures`"
    )
