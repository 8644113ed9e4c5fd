"""The quality check ranks like Spearman and discards the worst comparisons first."""

from __future__ import annotations

import numpy as np

from lab.evaluation.quality_check import QualityResult, fnmr_after_discard, ranks, spearman


def test_ranks_share_ties() -> None:
    assert ranks(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_is_rank_agreement_and_skips_undefined_entries() -> None:
    a = np.array([0.1, 0.5, 0.3, 0.9, np.nan])
    assert spearman(a, a**3) == 1.0  # monotone, not linear
    assert spearman(a, -a) == -1.0
    assert spearman(a, np.array([1.0, 2.0, np.nan, np.nan, 5.0])) is None  # two common entries
    assert spearman(np.ones(5), np.arange(5.0)) is None  # constant


def test_discarding_the_lowest_quality_comparisons_removes_their_errors_first() -> None:
    quality = np.array([0.9, 0.8, 0.1, 0.7, np.nan])
    pairs = np.array([[0, 1], [0, 2], [1, 3], [3, 4]])
    scores = np.array([0.9, 0.2, 0.8, 0.3])  # the pairs with image 2 (poor) and image 4 (unreadable) fail
    assert fnmr_after_discard(pairs, scores, quality, 0.5, (0.0, 0.25, 0.5)) == [0.5, 1 / 3, 0.0]
    # a quality score that points at the wrong images removes nothing useful
    backwards = fnmr_after_discard(pairs, scores, -np.nan_to_num(quality, nan=-1.0), 0.5, (0.0, 0.25, 0.5))
    assert backwards[2] >= 0.5


def test_nfiq2_is_optional_in_the_result() -> None:
    pairs = np.array([[0, 1], [1, 2]])
    scores = np.array([0.9, 0.1])
    ours = np.array([0.9, 0.8, 0.2])
    alone = QualityResult.of(pairs, scores, ours, 0.5)
    assert alone.fnmr_discard_ours[0] == 0.5 and alone.fnmr_discard_nfiq2 == [] and alone.spearman_vs_nfiq2 is None
    both = QualityResult.of(pairs, scores, ours, 0.5, np.array([70.0, 60.0, 20.0]))
    assert both.spearman_vs_nfiq2 == 1.0 and both.nfiq2_mean == 50.0
