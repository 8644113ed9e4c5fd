"""Minutiae of synthetic prints: found on ridges, and two impressions of one finger outscore two fingers."""

import math

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from fingerprint.model.comparator import Comparator
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate, cylinders
from fingerprint.model.minutiae.cylinders import build_many
from fingerprint.model.minutiae.extract import MASK_CELL_PX
from fingerprint.model.minutiae.match import consolidate, one_blas_thread
from lab.synth.impressions import random_warp
from lab.synth.masters import generate_masters
from tests.model.minutiae import found_minutiae


def test_a_print_has_tens_of_minutiae_inside_its_foreground(minutiae: list[list[MinutiaeTemplate]]) -> None:
    for finger in minutiae:
        for t in finger:
            assert 10 <= len(t.points) <= 80
            cells = (t.points[:, :2] // 16).astype(int)
            # the stored mask is of 16 px blocks more than half on the print: an edge block may be off
            assert t.foreground[cells[:, 1], cells[:, 0]].mean() >= 0.9


def test_extraction_is_deterministic(prints: list[list[np.ndarray]]) -> None:
    a, b = found_minutiae(prints[0][0]), found_minutiae(prints[0][0])
    np.testing.assert_array_equal(a.points, b.points)


def test_a_blank_image_has_no_minutiae_and_scores_zero() -> None:
    blank = found_minutiae(np.full((400, 400), 200, np.uint8))
    assert len(blank.points) == 0
    assert MinutiaeMatcher().scores(blank, [blank]) == [0.0]


def _sensor_like_impressions(seeds: list[int], n: int) -> list[list[np.ndarray]]:
    """Impressions turned, moved and distorted as a touch sensor does, at the sensor's fixed scale
    (the training generator also varies scale by ±20 %, which no real sensor does and which moves
    minutiae further than cylinders tolerate)."""
    masters = generate_masters(seeds).ridges.repeat_interleave(n, dim=0)
    gen = torch.Generator().manual_seed(5)
    ridges = random_warp(masters, gen, max_rotation_deg=20, max_shift_px=20, elastic_px=3, scale_range=(0.98, 1.02))
    imgs = (200 - 130 * torch.sigmoid(4 * ridges))[:, 0].round().to(torch.uint8).numpy()
    return [[imgs[f * n + i] for i in range(n)] for f in range(len(seeds))]


def test_mates_outscore_other_fingers() -> None:
    prints = _sensor_like_impressions([101, 202, 303, 404], 3)
    minutiae = [[found_minutiae(img) for img in finger] for finger in prints]
    matcher = MinutiaeMatcher()
    genuine, impostor = [], []
    for f, finger in enumerate(minutiae):
        for other in range(len(minutiae)):
            scores = matcher.scores(finger[0], minutiae[other][1:])
            (genuine if other == f else impostor).extend(s for s in scores if s is not None)
    assert min(genuine) > max(impostor)


def test_all_pairs_scores_each_pair_as_a_probe_against_a_template(minutiae: list[list[MinutiaeTemplate]]) -> None:
    """The benchmarks' and calibration's all-pairs matrix is what the index computes pair by pair."""
    templates = [minutiae[0][0], minutiae[0][1], minutiae[1][0]]
    matrix = MinutiaeMatcher().all_pairs(templates)
    assert matrix.shape == (3, 3) and np.array_equal(matrix, matrix.T) and np.all(np.diag(matrix) == 1)
    first_row = MinutiaeMatcher().scores(templates[0], templates[1:])
    np.testing.assert_allclose(matrix[0, 1:], first_row, rtol=1e-6)
    assert matrix[0, 1] > matrix[0, 2]  # mates above another finger


def test_turned_directions_recover_a_print_whose_minutiae_point_a_few_degrees_off(
    minutiae: list[list[MinutiaeTemplate]],
) -> None:
    """A cylinder's cells turn with its minutia's direction: the same minutiae with every direction 6
    degrees off lose much of their score, and a matcher that also tries the probe turned by 6 degrees
    gets it back (model card, "3.6.0")."""
    template = minutiae[0][0]
    off = template.points.copy()
    off[:, 2] = np.remainder(off[:, 2] + np.radians(6), 2 * np.pi)
    probe = MinutiaeTemplate(off, template.foreground)
    [plain] = MinutiaeMatcher().scores(probe, [template])
    [searched] = MinutiaeMatcher(direction_offsets=(-6, 6)).scores(probe, [template])
    assert plain is not None and searched is not None
    assert plain < 0.85 and searched > 0.95


def test_all_pairs_with_turned_directions_is_the_matchers_pairwise_score(minutiae: list[list[MinutiaeTemplate]]) -> None:
    templates = [minutiae[0][0], minutiae[0][1], minutiae[1][0]]
    matcher = MinutiaeMatcher(direction_offsets=(-6, 6))
    matrix = matcher.all_pairs(templates)
    np.testing.assert_allclose(matrix[0, 1:], matcher.scores(templates[0], templates[1:]), rtol=1e-6)
    assert np.all(np.diag(matrix) == 1) and np.allclose(matrix, matrix.T)


def test_cross_pairs_score_each_probe_form_against_each_enrolled_form(minutiae: list[list[MinutiaeTemplate]]) -> None:
    enrolled = [minutiae[0][0], minutiae[0][1], minutiae[1][0]]
    probes = [MinutiaeTemplate(t.points[::2], t.foreground) for t in enrolled]  # found otherwise: fewer
    matcher = MinutiaeMatcher(direction_offsets=(-6, 6))
    matrix = matcher.cross_pairs(probes, enrolled)
    for p in range(3):
        others = [e for e in range(3) if e != p]
        np.testing.assert_allclose(matrix[p, others], matcher.scores(probes[p], [enrolled[e] for e in others]), rtol=1e-6)
    assert np.all(np.diag(matrix) == 1)
    # the same minutiae on both sides: every pair as `all_pairs` scores it, the earlier print the probe
    same = matcher.cross_pairs(enrolled, enrolled)
    assert np.allclose(np.triu(same), np.triu(matcher.all_pairs(enrolled)))


def test_a_template_without_minutiae_gets_none() -> None:
    probe = MinutiaeTemplate(np.zeros((0, 3), np.float32), np.ones((20, 20), bool))
    assert MinutiaeMatcher().scores(probe, [None]) == [None]


def test_fusion_is_a_weighted_mean_on_the_cosine_scale() -> None:
    assert Comparator().fuse(0.5, 1.0) == 0.5
    assert Comparator(minutiae_weight=1.0).fuse(0.5, 1.0) == pytest.approx(0.75)
    assert Comparator(minutiae_weight=1.5).fuse(1.0, 1.0) == pytest.approx(1.0)
    # LEADER's minutiae are a third term on the same scale
    assert Comparator(minutiae_weight=1.0, leader_weight=2.0).fuse(0.5, 1.0, 0.0) == pytest.approx((0.5 + 1 - 2) / 4)


def test_one_minutia_cannot_pair_with_many() -> None:
    """A noisy print whose every minutia resembles one minutia of the other print gets one pair, not a
    full match: the assignment is one-to-one."""
    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(0, 300, (30, 2)), rng.uniform(0, 6.28, 30)]).astype(np.float32)
    b = a.copy()
    many_to_one = np.zeros((30, 30), np.float32)
    many_to_one[:, 0] = 0.9
    one_to_one = np.eye(30, dtype=np.float32) * 0.9
    assert consolidate(one_to_one, a, b) > 0.8
    assert consolidate(many_to_one, a, b) < 0.9 / 4


def test_the_matchers_blas_runs_on_one_thread_for_the_whole_process() -> None:
    one_blas_thread()
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert blas and all(lib["num_threads"] == 1 for lib in blas)


def test_cylinders_built_together_are_those_built_alone(minutiae: list[list[MinutiaeTemplate]]) -> None:
    """Prints of different counts and foreground sizes, one without minutiae, built in one batch."""
    prints = [t for finger in minutiae for t in finger]
    cropped = MinutiaeTemplate(prints[0].points[:5], prints[0].foreground[:10, :12])
    empty = MinutiaeTemplate(np.zeros((0, 3), np.float32), prints[1].foreground)
    batch = [*prints, cropped, empty] * 3  # more than one chunk
    together = build_many([(t.points, t.foreground) for t in batch], MASK_CELL_PX)
    assert len(together) == len(batch)
    for t, built in zip(batch, together, strict=True):
        alone = build_many([(t.points, t.foreground)], MASK_CELL_PX)[0]
        for name in ("minutiae", "valid_cells", "usable"):
            np.testing.assert_array_equal(getattr(built, name), getattr(alone, name))
        # the batch sets the length of the sums, which may change their float rounding, nothing more
        np.testing.assert_allclose(built.values, alone.values, atol=1e-6)
        np.testing.assert_allclose(built.energy, alone.energy, rtol=1e-5)
    assert len(together[-1].values) == 0


def test_only_neighbours_that_reach_the_disc_are_summed(minutiae: list[list[MinutiaeTemplate]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    prints = [(t.points, t.foreground) for finger in minutiae for t in finger]
    near = build_many(prints, MASK_CELL_PX)
    monkeypatch.setattr(cylinders, "_REACH", math.inf)
    every = build_many(prints, MASK_CELL_PX)
    for a, b in zip(near, every, strict=True):
        np.testing.assert_allclose(a.values, b.values, atol=1e-6)
        np.testing.assert_array_equal(a.valid_cells, b.valid_cells)
        np.testing.assert_array_equal(a.usable, b.usable)
