"""Error rates and the FVC protocol's pair counts."""

from __future__ import annotations

import numpy as np

from fingerprint.calibration.metrics import cmc, eer, fnmr_at_fmr, threshold_at_fmr
from fingerprint.calibration.protocol import all_pairs, fvc_pairs, identification_split


def test_eer_of_separable_and_overlapping_scores() -> None:
    assert eer(np.array([0.9, 0.8, 0.95]), np.array([0.1, 0.2, 0.3])) == 0.0
    gen = np.linspace(0.4, 1.0, 1000)
    imp = np.linspace(0.0, 0.6, 1000)
    assert abs(eer(gen, imp) - 1 / 6) < 0.01


def test_threshold_at_fmr_accepts_at_most_that_share_of_impostors() -> None:
    imp = np.random.default_rng(0).random(10000)
    t = threshold_at_fmr(imp, 0.001)
    assert (imp >= t).mean() <= 0.001
    assert fnmr_at_fmr(np.array([0.5]), imp[:50], 0.001) is None  # too few impostors to measure


def test_fvc_protocol_pair_counts() -> None:
    fingers = [f"{f}" for f in range(10) for _ in range(8)]
    impressions = [i for _ in range(10) for i in range(1, 9)]
    p = fvc_pairs(fingers, impressions)
    assert len(p.genuine) == 10 * 28 and len(p.impostor) == 45
    a = all_pairs(fingers)
    assert len(a.genuine) == 280 and len(a.impostor) == 80 * 79 // 2 - 280
    gallery, probes = identification_split(fingers, impressions)
    assert len(gallery) == 10 and len(probes) == 70


def test_cmc() -> None:
    sim = np.array([[0.9, 0.1], [0.2, 0.3], [0.1, 0.5]])
    curve = cmc(sim, np.array(["a", "a", "b"]), np.array(["a", "b"]), ranks=2)
    assert list(curve) == [2 / 3, 1.0]
