"""Several enrolled impressions: the best template decides, on one probe set for every k."""

from __future__ import annotations

import numpy as np

from fingerprint.calibration.enrollment import by_enrolled_impressions


def test_a_second_enrolled_impression_rescues_a_probe_the_first_misses() -> None:
    # two fingers x 3 impressions; image order is shuffled, impression numbers decide enrollment
    fingers = ["a", "b", "a", "b", "a", "b"]
    impressions = [1, 1, 2, 2, 3, 3]
    cos = np.full((6, 6), -0.8)  # [probe, enrolled], scores (cos + 1) / 2 = 0.1
    cos[4, 0] = 0.0  # a's probe (impression 3) against a's impression 1: 0.5, below the threshold
    cos[4, 2] = 0.8  # ... against a's impression 2: 0.9
    cos[5, 1] = 0.8  # b's probe against b's impression 1: 0.9
    cos[4, 1] = 0.5  # a's probe against b's impression 1: 0.75, an impostor above the threshold
    one, two = by_enrolled_impressions(cos, fingers, impressions, 0.7, enrolled=(1, 2))
    assert (one.enrolled, one.probes, one.fnmr, one.fmr, one.rank1) == (1, 2, 0.5, 0.5, 0.5)
    assert (two.enrolled, two.probes, two.fnmr, two.fmr, two.rank1) == (2, 2, 0.0, 0.5, 1.0)


def test_no_probe_left_means_no_rows() -> None:
    assert by_enrolled_impressions(np.zeros((4, 4)), ["a", "a", "b", "b"], [1, 2, 1, 2], 0.5) == []
