"""A conversation turn's stored vector leans toward the turn before it in its session."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from domain.turn_vectors import in_context

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
A, B, C = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def test_the_first_turn_keeps_its_own_vector_and_the_next_leans_toward_it() -> None:
    out = in_context([A, B], [T0, T0], previous=None, weight=0.5)
    assert out[0] == A
    assert out[1] == pytest.approx(_unit([0.5, 1.0, 0.0]))


def test_the_turn_before_the_batch_is_blended_into_its_first_turn() -> None:
    out = in_context([B], [T0], previous=(T0 - timedelta(minutes=1), A), weight=0.5)
    assert out[0] == pytest.approx(_unit([0.5, 1.0, 0.0]))


def test_the_blend_is_recursive_so_batches_and_single_turns_agree() -> None:
    times = [T0 + timedelta(minutes=i) for i in range(3)]
    batch = in_context([A, B, C], times, previous=None, weight=0.3)
    one_by_one: list[list[float]] = []
    previous = None
    for vector, at in zip([A, B, C], times, strict=True):
        stored = in_context([vector], [at], previous=previous, weight=0.3)[0]
        one_by_one.append(list(stored))
        previous = (at, stored)
    for got, want in zip(batch, one_by_one, strict=True):
        assert list(got) == pytest.approx(want)
    # The turn two back weighs weight² through the one in between.
    assert batch[2][0] > 0.0


def test_a_silence_longer_than_a_session_gap_starts_afresh() -> None:
    out = in_context([A, B], [T0, T0 + timedelta(hours=5)], previous=None, weight=0.5)
    assert out[1] == B
    late = in_context([B], [T0 + timedelta(hours=5)], previous=(T0, A), weight=0.5)
    assert late[0] == B


def test_weight_zero_stores_every_turn_as_it_is() -> None:
    assert in_context([A, B], [T0, T0], previous=(T0, C), weight=0.0) == [A, B]


def test_vectors_stay_unit_length() -> None:
    out = in_context([A, _unit([1.0, 1.0, 0.0])], [T0, T0], previous=(T0, C), weight=0.3)
    for vector in out:
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0)


def test_a_previous_vector_of_another_dimension_is_not_blended() -> None:
    assert in_context([A], [T0], previous=(T0, [1.0, 0.0]), weight=0.3) == [A]
