"""End to end with the shipped model: same finger scores above different fingers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.weights import DEFAULT_WEIGHTS, WeightsError
from tests.conftest import card_variant


def test_same_finger_outscores_different_fingers(png_prints: list[list[bytes]]) -> None:
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000)
    embeddings = [e for finger in png_prints for e in embedder.embed([embedder.preprocess(b, 500.0) for b in finger])]
    finger_of = [f for f, finger in enumerate(png_prints) for _ in finger]
    sim = Comparator().all_pairs(embeddings)  # [probe, enrolled], scored as the service scores
    pairs = list(itertools.permutations(range(len(embeddings)), 2))
    genuine = [sim[p, e] for p, e in pairs if finger_of[p] == finger_of[e]]
    impostor = [sim[p, e] for p, e in pairs if finger_of[p] != finger_of[e]]
    assert np.mean(genuine) > np.mean(impostor) + 0.1
    assert np.median(genuine) > np.percentile(impostor, 90)


def test_embedding_is_deterministic_and_unit_length(png_prints: list[list[bytes]]) -> None:
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000)
    p = embedder.preprocess(png_prints[0][0], 500.0)
    (a,) = embedder.embed([p])
    b, _ = embedder.embed([p, embedder.preprocess(png_prints[1][0], 500.0)])
    assert a.views.shape[0] == (2 * embedder.meta.probe_shift_radius + 1) ** 2
    assert np.allclose(a.views, b.views, atol=1e-5)
    assert np.allclose(np.linalg.norm(a.views, axis=-1), 1.0, atol=1e-4)
    assert (a.dense is None) == (not embedder.meta.dense_matching)
    if a.dense is not None and b.dense is not None:
        assert a.dense.dtype == np.int8
        assert np.abs(a.dense.astype(int) - b.dense.astype(int)).max() <= 1  # batch-size rounding only


def test_an_unreadable_image_is_scored_like_the_others(png_prints: list[list[bytes]]) -> None:
    """Eval scores an image it cannot decode as the blank print: with a model that compares minutiae,
    the blank has none (it must not switch the whole set's scoring back to the grids alone)."""
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000)
    blank = embedder.blank()
    assert (blank.minutiae is None) == (embedder.meta.minutiae_weight == 0)
    prepared = [embedder.preprocess(png_prints[0][0], 500.0), embedder.preprocess(png_prints[0][1], 500.0)]
    with_blank = Comparator.from_card(embedder.meta).all_pairs(embedder.embed([*prepared, blank]))
    without = Comparator.from_card(embedder.meta).all_pairs(embedder.embed(prepared))
    np.testing.assert_allclose(with_blank[:2, :2], without, atol=1e-5)


def test_bfloat16_scores_every_pair_as_float32_does(png_prints: list[list[bytes]]) -> None:
    """The served default on CPUs with native bfloat16: same prints, the same decisions to within
    a hundredth of a score (the card's thresholds are ~0.13-0.14 apart from impostors' ~0)."""
    exact, half = (TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000, precision=p) for p in ("float32", "bfloat16"))
    assert (exact.precision, half.precision) == ("float32", "bfloat16")
    prepared = [exact.preprocess(b, 500.0) for finger in png_prints for b in finger]
    meta = exact.meta
    scores = [Comparator.from_card(meta).all_pairs(e.embed(prepared)) for e in (exact, half)]
    assert np.abs(scores[0] - scores[1]).max() < 0.01


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000, precision="float16")


def test_the_bundled_model_fuses_leaders_minutiae_and_they_separate_fingers(png_prints: list[list[bytes]]) -> None:
    """Model 5.0 templates carry LEADER's minutiae (on the print's foreground, in the window's pixels), and
    LEADER's score alone already tells the same finger from another on most of these synthetic prints (the
    project's generator is not LEADER's training data: one of the four fingers scores low against itself)."""
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000)
    comparator = Comparator.from_card(embedder.meta)
    assert comparator.leader_weight > 0
    prepared = [embedder.preprocess(b, 500.0) for finger in png_prints for b in finger[:2]]
    templates = [p.minutiae for p in prepared]
    assert all(t is not None and t.leader is not None and len(t.leader) >= 5 for t in templates)
    window = embedder.meta.minutiae_crop()
    for t in templates:
        assert t is not None and t.leader is not None
        assert (t.leader[:, :2] >= 0).all() and (t.leader[:, :2] < window).all()
    leaders = [t.leader_template() for t in templates if t is not None]
    scores = comparator.minutiae.all_pairs(leaders)  # type: ignore[arg-type]
    genuine = [scores[2 * f, 2 * f + 1] for f in range(len(png_prints))]
    impostor = [scores[2 * f, 2 * g] for f in range(len(png_prints)) for g in range(len(png_prints)) if f != g]
    assert np.median(genuine) > 3 * max(impostor) and sum(g > max(impostor) for g in genuine) >= 3


def test_fast_probes_find_leaders_minutiae_with_the_distilled_network(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    """Enrolment runs LEADER; a probe, with fast probes, the card's network distilled from it
    (model/student.py): most of LEADER's minutiae of a print are found again, a few pixels off at most,
    in the same directions. Refined, a probe has exactly the minutiae its enrolment would have."""
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000, fast_probes=True)
    assert embedder.distinct_probe_minutiae and not TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000).distinct_probe_minutiae
    found, recalled = 0, 0
    for finger in png_prints:
        enrolled, probe = embedder.preprocess(finger[0], 500.0), embedder.preprocess(finger[0], 500.0, probe=True)
        assert enrolled.minutiae is not None and probe.minutiae is not None
        np.testing.assert_array_equal(probe.minutiae.points, enrolled.minutiae.points)  # the hand-made ones
        lead, student = enrolled.minutiae.leader, probe.minutiae.leader
        assert lead is not None and student is not None and not np.array_equal(lead, student)
        distance = np.linalg.norm(lead[:, None, :2] - student[None, :, :2], axis=2)
        near = distance.min(1) <= 4
        turn = np.remainder(lead[near, 2] - student[distance.argmin(1)[near], 2] + np.pi, 2 * np.pi) - np.pi
        assert np.median(np.abs(turn)) < np.radians(15)
        found, recalled = found + len(lead), recalled + int(near.sum())
        assert enrolled.leader_source is None and probe.leader_source is not None
        refined = embedder.refine(probe.minutiae, probe.leader_source)
        np.testing.assert_array_equal(refined.leader, lead)
        np.testing.assert_array_equal(refined.points, enrolled.minutiae.points)
        np.testing.assert_array_equal(refined.foreground, enrolled.minutiae.foreground)
    assert recalled / found > 0.6
    without = card_variant(tmp_path / "w", probe_minutiae_sha256="")
    with pytest.raises(WeightsError, match="fast probes"):
        TorchEmbedder(without, 16_000_000, fast_probes=True)


def test_the_fast_probe_network_in_bfloat16_finds_float32s_minutiae(png_prints: list[list[bytes]]) -> None:
    """Where bfloat16 is the served precision the distilled network computes in it too: the same minutiae
    but for a few at its threshold, within a pixel."""
    exact, half = (TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000, precision=p, fast_probes=True) for p in ("float32", "bfloat16"))
    same, total = 0, 0
    for finger in png_prints:
        a, b = (e.preprocess(finger[0], 500.0, probe=True).minutiae for e in (exact, half))
        assert a is not None and b is not None and a.leader is not None and b.leader is not None
        distance = np.linalg.norm(a.leader[:, None, :2] - b.leader[None, :, :2], axis=2)
        same, total = same + int((distance.min(1) <= 1.0).sum()), total + max(len(a.leader), len(b.leader))
    assert total > 20 and same / total >= 0.9


def test_evaluation_scores_every_pair_as_verify_scores_it(png_prints: list[list[bytes]]) -> None:
    """`Comparator.all_pairs` with the probes' own minutiae and the enrolled side as stored is what the
    evaluation, calibration and release report: each pair must score exactly as a verify of that probe
    against that one stored template (the gallery keeps minutiae on whole pixels)."""
    from dataclasses import replace

    from fingerprint.gallery.index import GalleryIndex

    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000)
    comparator = Comparator.from_card(embedder.meta)
    images = [png_prints[0][0], png_prints[0][1], png_prints[1][0]]
    embeddings = embedder.embed([embedder.preprocess(b, 500.0) for b in images])
    stored = [replace(e, minutiae=None if e.minutiae is None else e.minutiae.as_stored()) for e in embeddings]
    cos = comparator.all_pairs(stored, [e.minutiae for e in embeddings])
    index = GalleryIndex(embedder.meta.embedding_dim, comparator)
    for k, e in enumerate(embeddings):
        index.add(f"t{k}", f"s{k}", None, e.views[0], e.dense, e.minutiae)
    for p, e in itertools.permutations(range(len(images)), 2):
        probe = embeddings[p]
        assert probe.minutiae is not None
        hit = index.best_for_subject(probe.views, f"s{e}", probe.dense, comparator.probe(probe.minutiae))
        assert hit is not None and hit.score == pytest.approx(Comparator.to_score(cos[p, e]), abs=1e-6)
