"""The serving process's garbage-collector settings (memoria/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from memoria.collector import YOUNG_THRESHOLD, settle_after_startup


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_start_up_objects_and_collects_young_objects_less_often() -> None:
    gc.unfreeze()
    middle, old = gc.get_threshold()[1:]
    start_up_object: list[object] = [["built at start-up"]]

    settle_after_startup()

    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(start_up_object)
    # A frozen object is in no generation, so no collection scans it.
    assert not any(o is start_up_object for o in gc.get_objects())
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
