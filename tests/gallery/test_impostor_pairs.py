"""The gallery's own impostor scores: pairs of stored templates of different subjects."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprint.gallery.impostor_pairs import ImpostorPairs
from fingerprint.gallery.index import GalleryIndex
from fingerprint.model.comparator import Comparator
from fingerprint.model.dense import GridMatcher
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate


def fusing_index(n: int, seed: int) -> GalleryIndex:
    """n templates of n // 2 subjects with grids and both minutiae sets, compared as model 5 compares them."""
    rng = np.random.default_rng(seed)
    index = GalleryIndex(16, Comparator(GridMatcher(rotations=(-10.0, 10.0), fusion_weight=0.25),
                                        MinutiaeMatcher(direction_offsets=(-6, 6)), minutiae_weight=2.0, leader_weight=3.0))
    for k in range(n):
        v = rng.normal(size=16).astype(np.float32)
        points = np.c_[rng.uniform(60, 260, (40, 2)), rng.uniform(0, 2 * np.pi, 40)].astype(np.float32)
        minutiae = MinutiaeTemplate(points, np.ones((20, 20), bool), points[rng.permutation(40)[:30]])
        index.add(f"t{k}", f"s{k // 2}", None, v / np.linalg.norm(v), rng.integers(-60, 61, (8, 10, 10)).astype(np.int8),
                  minutiae)
    return index


def test_a_pair_scores_as_verify_scores_the_first_template_as_a_probe() -> None:
    index = fusing_index(6, 1)
    first = index.rows_of(["t0"])
    assert first.grids is not None and first.minutiae[0] is not None
    verified = index.best_for_subject(first.vectors[0].numpy(), "s1", first.grids[0].numpy(),
                                      MinutiaeTemplate.from_bytes(first.minutiae[0]))
    assert verified is not None
    assert max(ImpostorPairs(index).score_against("t0", ["t2", "t3"])) == pytest.approx(verified.score, abs=1e-6)


def test_pairs_of_one_subject_and_templates_gone_are_not_scored() -> None:
    index = fusing_index(6, 2)
    pairs = ImpostorPairs(index)
    assert pairs.score_against("t0", ["t1"]) == []  # t0 and t1 are one subject's
    assert pairs.score_against("never-stored", ["t2"]) == []
    assert len(pairs.score_against("t0", ["t2", "t3", "t4"])) == 3
    index.remove_template("t3")
    assert len(pairs.score_against("t0", ["t2", "t3", "t4"])) == 2
    assert len(pairs.score_among(["t0", "t1", "t2", "t3"])) == 2  # t3 is gone; t0 and t1 are one subject


def test_a_block_scores_each_pair_as_one_template_against_the_other() -> None:
    index = fusing_index(7, 3)
    ids = [f"t{k}" for k in range(7)] + ["never-stored"]
    pairs = ImpostorPairs(index)
    expected = [s for k, t in enumerate(ids) for s in pairs.score_against(t, ids[k + 1 :])]
    assert len(expected) == 7 * 6 // 2 - 3  # the three pairs of one subject are not impostors
    assert pairs.score_among(ids) == pytest.approx(expected, abs=1e-6)
    index.add("bare", "s-bare", None, np.ones(16, np.float32) / 4, np.zeros((8, 10, 10), np.int8))
    with_bare = [*ids[:3], "bare"]  # a template without minutiae: each pair as score_against scores it
    assert pairs.score_among(with_bare) == pytest.approx(
        [s for k, t in enumerate(with_bare) for s in pairs.score_against(t, with_bare[k + 1 :])], abs=1e-6)
