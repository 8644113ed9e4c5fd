"""EER intervals from resampling fingers, and the paired comparison with a baseline."""

from __future__ import annotations

import numpy as np

from fingerprint.calibration.metrics import eer
from fingerprint.calibration.protocol import fvc_pairs
from lab.evaluation.confidence import Scored, finger_bootstrap, interval_lines, pair_fingers


def _set(fingers: int = 10, impressions: int = 8) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = [f"{100 + f}" for f in range(fingers) for _ in range(impressions)]
    pairs = fvc_pairs(names, [i + 1 for _ in range(fingers) for i in range(impressions)])
    return names, pair_fingers(names, pairs.genuine)[:, 0], pair_fingers(names, pairs.impostor)


def test_fingers_of_pairs_are_indexed_in_order_of_first_appearance() -> None:
    assert pair_fingers(["b", "b", "a", "c"], np.array([[0, 2], [2, 3], [1, 0]])).tolist() == [[0, 1], [1, 2], [0, 0]]


def test_the_interval_holds_the_point_estimate_and_is_reproducible() -> None:
    _, gf, imf = _set()
    rng = np.random.default_rng(0)
    ours = Scored(rng.normal(0.7, 0.1, len(gf)), rng.normal(0.4, 0.1, len(imf)))
    a = finger_bootstrap(gf, imf, ours, resamples=300)
    assert a == finger_bootstrap(gf, imf, ours, resamples=300)
    assert a.eer == eer(ours.genuine, ours.impostor)
    assert a.low <= a.eer <= a.high and a.high - a.low > 0.01  # 10 fingers: a wide interval
    assert a.difference_low is None and a.not_worse_share is None


def test_a_matcher_against_itself_differs_by_nothing() -> None:
    _, gf, imf = _set()
    rng = np.random.default_rng(1)
    ours = Scored(rng.normal(0.6, 0.15, len(gf)), rng.normal(0.4, 0.1, len(imf)))
    same = finger_bootstrap(gf, imf, ours, ours, resamples=200)
    assert same.difference_low == same.difference_high == 0.0 and same.not_worse_share == 1.0


def test_one_bad_finger_widens_the_interval_and_a_uniformly_worse_matcher_loses_every_resample() -> None:
    _, gf, imf = _set()
    rng = np.random.default_rng(2)
    genuine = rng.normal(0.8, 0.05, len(gf))
    impostor = rng.normal(0.3, 0.05, len(imf))
    clean = finger_bootstrap(gf, imf, Scored(genuine, impostor), resamples=300)
    hurt = genuine.copy()
    hurt[gf == 3] = 0.2  # every genuine pair of one finger fails
    one_bad = finger_bootstrap(gf, imf, Scored(hurt, impostor), resamples=300)
    assert clean.high < 0.02 and one_bad.high > 0.15 and one_bad.low < one_bad.eer
    worse = Scored(genuine - 0.45, impostor)  # overlaps the impostors everywhere
    versus = finger_bootstrap(gf, imf, worse, Scored(genuine, impostor), resamples=300)
    assert versus.difference_low is not None and versus.difference_low > 0 and versus.not_worse_share == 0.0


def test_the_table_has_a_row_per_set_and_protocol() -> None:
    _, gf, imf = _set()
    ours = Scored(np.linspace(0.5, 1, len(gf)), np.linspace(0, 0.6, len(imf)))
    iv = finger_bootstrap(gf, imf, ours, ours, resamples=50)
    lines = interval_lines([("A", {"fvc": iv, "all_pairs": iv}), ("B", {"fvc": iv})])
    assert sum(line.startswith("| A |") for line in lines) == 2 and sum(line.startswith("| B |") for line in lines) == 1
    assert "[+0.00, +0.00] | 100 %" in lines[-1]
