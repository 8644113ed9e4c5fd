"""The one admission point: it admits what can finish before the extraction deadline, refuses the rest at once."""

from __future__ import annotations

import pytest

from fingerprint.batching.admission import Admission, QueueFull


def test_a_fixed_pool_without_a_deadline_to_fit() -> None:
    admission = Admission(3)
    slots = [admission.slot() for _ in range(3)]
    with pytest.raises(QueueFull):
        admission.slot()
    slots[0].__exit__(None, None, None)
    assert admission.depth == 2 and admission.capacity == 3


def test_slow_extraction_shrinks_the_queue_to_what_fits_the_deadline() -> None:
    admission = Admission(100, stage_deadline=5.0, parallelism=2)
    assert admission.capacity == 4  # nothing measured yet: two per worker, until the first extraction ends
    for _ in range(30):
        admission.observe_stage(0.05)  # a fast model: the pool is the limit
    assert admission.capacity == 100
    for _ in range(30):
        admission.observe_stage(1.4)  # LEADER on every print: 2 workers x 4 s / 1.4 s
    assert admission.capacity == 5
    slots = [admission.slot() for _ in range(5)]
    with pytest.raises(QueueFull) as refused:
        admission.slot()
    assert refused.value.capacity == 5
    for _ in range(30):
        admission.observe_stage(30.0)  # however slow, every worker stays busy
    assert admission.capacity == 2
    for s in slots:
        s.__exit__(None, None, None)
    for _ in range(100):
        admission.observe_stage(0.1)  # and it grows back when extraction is fast again
    assert 75 <= admission.capacity <= 80
