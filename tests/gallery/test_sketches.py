"""The background builder of the index's minutiae sketches."""

import asyncio

import numpy as np
import pytest

from fingerprint.gallery.index import GalleryIndex
from fingerprint.gallery.sketches import SketchWarmer
from fingerprint.model.comparator import Comparator
from fingerprint.model.dense import GridMatcher
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate


def _minutiae(seed: int) -> MinutiaeTemplate:
    rng = np.random.default_rng(seed)
    points = np.c_[rng.uniform(60, 260, (40, 2)), rng.uniform(0, 2 * np.pi, 40)].astype(np.float32)
    return MinutiaeTemplate(points, np.ones((20, 20), bool))


@pytest.mark.asyncio
async def test_it_builds_every_loaded_templates_sketch_pausing_between_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fingerprint.gallery.sketches.CHUNK", 3)
    idx = GalleryIndex(16, Comparator(GridMatcher(), MinutiaeMatcher(), minutiae_weight=5.0))
    grid = np.zeros((64, 10, 10), np.int8)
    for seed in range(7):
        idx.add(f"t{seed}", f"s{seed}", None, np.ones(16, np.float32) / 4, grid, _minutiae(seed))
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    warmer = SketchWarmer(idx, busy_share=0.5, sleep=sleep)
    warmer.start()
    await asyncio.wait_for(warmer._task, 30)  # type: ignore[arg-type]
    await warmer.stop()
    assert all(s is not None for s in idx._minutiae.sketches)
    assert len(pauses) == 3 and all(p > 0 for p in pauses)  # 3 + 3 + 1 rows, then nothing left
    with pytest.raises(ValueError):
        SketchWarmer(idx, busy_share=0)
