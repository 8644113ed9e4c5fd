"""The in-memory index is exact: same top-k as brute force float32, across chunks and removals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fingerprint.gallery.index import GalleryIndex
from fingerprint.model.comparator import Comparator
from fingerprint.model.dense import GridMatcher, grid_scores
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_remove_subject_keeps_other_rows_searchable() -> None:
    vecs = _unit(50, 16, 2)
    idx = GalleryIndex(16)
    for i, v in enumerate(vecs):
        idx.add(f"t{i}", "alice" if i < 10 else f"s{i}", None, v)
    assert idx.remove_subject("alice") == 10
    assert len(idx) == 40 and not idx.has_subject("alice")
    for i in range(10, 50):
        assert idx.search(vecs[i], 1)[0].template_id == f"t{i}"
    assert idx.remove_subject("alice") == 0


def test_best_for_subject_and_empty_index() -> None:
    idx = GalleryIndex(8)
    assert idx.search(_unit(1, 8, 3)[0], 5) == []
    v = _unit(3, 8, 4)
    idx.add("a1", "a", "right_index", v[0])
    idx.add("a2", "a", "left_index", v[1])
    hit = idx.best_for_subject(v[1], "a")
    assert hit is not None and hit.template_id == "a2" and hit.score > 0.99
    assert idx.best_for_subject(v[1], "nobody") is None


def test_a_probe_scores_each_template_by_its_best_view() -> None:
    rng = np.random.default_rng(3)
    index = GalleryIndex(16)
    templates = rng.standard_normal((50, 16)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    for i, t in enumerate(templates):
        index.add(f"t{i}", f"s{i}", None, t)
    # the centred view is unrelated to every template; a shifted view is template 7 itself
    views = rng.standard_normal((9, 16)).astype(np.float32)
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    views[4] = templates[7]
    hits = index.search_views(views, 3)
    assert hits[0].template_id == "t7" and abs(hits[0].score - 1.0) < 1e-3
    expected = np.sort((templates @ views.T).max(axis=1))[::-1][:3]
    assert np.allclose([h.score for h in hits], (expected + 1) / 2, atol=1e-3)
    best = index.best_for_subject(views, "s7")
    assert best is not None and abs(best.score - 1.0) < 1e-3
    assert [h.template_id for h in index.search_views(views[:1], 3)] == [h.template_id for h in index.search(views[0], 3)]


def _grids(n: int, seed: int) -> np.ndarray:
    """Random int8 descriptor grids (unit cells x 127) with a random off-print border."""
    rng = np.random.default_rng(seed)
    cells = rng.standard_normal((n, 16, 10, 10)).astype(np.float32)
    cells /= np.linalg.norm(cells, axis=1, keepdims=True)
    cells[:, :, :, : rng.integers(0, 3)] = 0
    return np.round(cells * 127).astype(np.int8)


def test_grids_decide_the_order_and_follow_their_rows() -> None:
    vecs, grids = _unit(40, 16, 5), _grids(40, 6)
    idx = GalleryIndex(16, initial_capacity=4)  # grows several times: grids must grow with the rows
    for i in range(40):
        idx.add(f"t{i}", "gone" if i < 5 else f"s{i}", None, vecs[i], grids[i])
    assert idx.bytes_per_template == 16 * 2 + 16 * 100
    idx.remove_subject("gone")  # moves the last rows into the holes
    # the probe's vectors are unrelated to every template; its grid is template 37's moved 2 cells
    probe_grid = np.zeros_like(grids[37])
    probe_grid[:, 2:, :] = grids[37][:, :-2, :]
    hits = idx.search_views(_unit(9, 16, 7), 3, probe_grid)
    assert hits[0].template_id == "t37"
    p = torch.from_numpy(probe_grid)[None]
    expected = grid_scores(p, torch.from_numpy(grids[[int(h.template_id[1:]) for h in hits]]))[0]
    assert np.allclose([h.score for h in hits], (expected.numpy() + 1) / 2, atol=1e-5)
    assert hits[0].score > 0.9 > hits[1].score
    best = idx.best_for_subject(_unit(1, 16, 8), "s37", probe_grid)
    assert best is not None and best.template_id == "t37" and abs(best.score - hits[0].score) < 1e-6
    assert idx.best_for_subject(_unit(1, 16, 8), "gone", probe_grid) is None


def _minutiae(seed: int) -> MinutiaeTemplate:
    rng = np.random.default_rng(seed)
    points = np.c_[rng.uniform(60, 260, (40, 2)), rng.uniform(0, 2 * np.pi, 40)].astype(np.float32)
    return MinutiaeTemplate(points, np.ones((20, 20), bool))


def test_minutiae_break_a_tie_of_grids_and_survive_removals() -> None:
    vec = _unit(1, 16, 0)[0]
    grid = np.random.default_rng(1).integers(-60, 61, (64, 10, 10)).astype(np.int8)
    idx = GalleryIndex(16, Comparator(GridMatcher(), minutiae_weight=1.5))
    idx.add("other", "s-other", None, vec, grid, _minutiae(2))
    idx.add("gone", "s-gone", None, vec, grid, _minutiae(3))
    idx.add("mate", "s-mate", None, vec, grid, _minutiae(1))
    idx.remove_subject("s-gone")  # "mate" moves into the freed row with its minutiae
    hits = idx.search_views(vec[None], 2, grid, _minutiae(1))
    assert [h.template_id for h in hits] == ["mate", "other"]
    assert hits[0].score > hits[1].score
    mate = idx.best_for_subject(vec[None], "s-mate", grid, _minutiae(1))
    other = idx.best_for_subject(vec[None], "s-other", grid, _minutiae(1))
    assert mate is not None and other is not None
    assert mate.score == pytest.approx(hits[0].score)
    assert other.score == pytest.approx(hits[1].score)


def test_minutiae_are_compared_by_the_matcher_the_index_is_given() -> None:
    """The card's minutiae matcher (its direction offsets) scores identify and verify, not a default one."""
    vec = _unit(1, 16, 0)[0]
    grid = np.random.default_rng(1).integers(-60, 61, (64, 10, 10)).astype(np.int8)
    enrolled = _minutiae(1)
    turned = enrolled.points.copy()
    turned[:, 2] += np.radians(6)  # every direction found 6 degrees off
    probe = MinutiaeTemplate(turned, enrolled.foreground)
    plain = GalleryIndex(16, Comparator(GridMatcher(), minutiae_weight=5.0))
    searching = GalleryIndex(16, Comparator(GridMatcher(), MinutiaeMatcher(direction_offsets=(-6, 6)), 5.0))
    for idx in (plain, searching):
        idx.add("a", "s", None, vec, grid, enrolled)
    without = plain.best_for_subject(vec[None], "s", grid, probe)
    with_search = searching.best_for_subject(vec[None], "s", grid, probe)
    assert without is not None and with_search is not None
    assert with_search.score > without.score
    assert searching.search_views(vec[None], 1, grid, probe)[0].score == pytest.approx(with_search.score)


def test_without_a_minutiae_weight_the_grids_alone_score() -> None:
    vec = _unit(1, 16, 0)[0]
    grid = np.random.default_rng(1).integers(-60, 61, (64, 10, 10)).astype(np.int8)
    plain, weighted = GalleryIndex(16), GalleryIndex(16, Comparator(GridMatcher(), minutiae_weight=1.5))
    for idx in (plain, weighted):
        idx.add("a", "s", None, vec, grid, _minutiae(1))
    without = plain.best_for_subject(vec[None], "s", grid, _minutiae(1))
    probe_without_minutiae = weighted.best_for_subject(vec[None], "s", grid, None)
    assert without is not None and probe_without_minutiae is not None
    assert without.score == pytest.approx(probe_without_minutiae.score)


def test_a_probe_built_ahead_scores_as_its_minutiae_do() -> None:
    """The pipeline builds a probe's cylinders beside inference; the index scores that as it would the
    minutiae themselves."""
    vec = _unit(1, 16, 0)[0]
    grid = np.random.default_rng(1).integers(-60, 61, (64, 10, 10)).astype(np.int8)
    matcher = MinutiaeMatcher(direction_offsets=(-6, 6))
    comparator = Comparator(GridMatcher(), matcher, 5.0)
    idx = GalleryIndex(16, comparator)
    for seed in (1, 2, 3):
        idx.add(f"t{seed}", f"s{seed}", None, vec, grid, _minutiae(seed))
    probe = _minutiae(1)
    built = comparator.probe(probe)
    assert [(h.template_id, h.score) for h in idx.search_views(vec[None], 3, grid, built)] == \
        [(h.template_id, h.score) for h in idx.search_views(vec[None], 3, grid, probe)]
    assert idx.best_for_subject(vec[None], "s1", grid, built) == idx.best_for_subject(vec[None], "s1", grid, probe)


def _with_leader(own: int, leader: int) -> MinutiaeTemplate:
    return MinutiaeTemplate(_minutiae(own).points, _minutiae(own).foreground, _minutiae(leader).points)


def test_identify_compares_the_hand_made_minutiae_of_the_best_by_leaders_only() -> None:
    """Identify compares LEADER's minutiae first and the hand-made ones of only the best
    `own_minutiae_shortlist` of those; every score it returns is still verify's, in full."""
    vec = _unit(1, 16, 0)[0]
    grid = np.random.default_rng(1).integers(-60, 61, (64, 10, 10)).astype(np.int8)
    probe = _with_leader(1, 11)
    stored = {"leader-like": _with_leader(2, 11), "own-like": _with_leader(1, 12),
              **{f"t{s}": _with_leader(s, s + 10) for s in (3, 4, 5)}}
    found = {}
    for own_shortlist in (1, 5):
        comparator = Comparator(GridMatcher(), MinutiaeMatcher(), minutiae_weight=5.0, leader_weight=1.0,
                                own_minutiae_shortlist=own_shortlist)
        idx = GalleryIndex(16, comparator)
        for name, minutiae in stored.items():
            idx.add(name, f"s-{name}", None, vec, grid, minutiae)
        hits = idx.search_views(vec[None], 1, grid, comparator.probe(probe))
        verified = idx.best_for_subject(vec[None], hits[0].subject_id, grid, probe)
        assert verified is not None and hits[0].score == verified.score
        found[own_shortlist] = hits[0].template_id
    # the hand-made minutiae weigh more: compared for every candidate, they decide; compared for the best
    # by LEADER's only, the print whose LEADER minutiae agree is all they see
    assert found == {5: "own-like", 1: "leader-like"}


def test_identify_fully_compares_only_the_best_by_sketch_and_returns_verify_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """With sketches, only the `sketch_shortlist` best candidates by grid and sketch have their cylinders
    built; the mate is among them and every score returned is verify's."""
    vec = _unit(1, 16, 0)[0]
    grid = np.random.default_rng(1).integers(-60, 61, (64, 10, 10)).astype(np.int8)
    comparator = Comparator(GridMatcher(), MinutiaeMatcher(direction_offsets=(-6, 6)), minutiae_weight=5.0,
                            sketch_shortlist=2)
    idx = GalleryIndex(16, comparator)
    for seed in range(1, 9):
        idx.add(f"t{seed}", f"s{seed}", None, vec, grid, _minutiae(seed))
    idx.remove_subject("s3")  # the last row moves into the hole, with its sketch once built
    assert idx.warm_sketches(4) == 4 and idx.warm_sketches(100) == 3 and idx.warm_sketches(100) == 0
    assert all(s is not None for s in idx._minutiae.sketches) and idx.bytes_per_template > 16 * 2 + 6400
    built: list[int] = []
    cylinders_of = comparator.minutiae.cylinders_of
    monkeypatch.setattr(comparator.minutiae, "cylinders_of", lambda ts: built.append(len(ts)) or cylinders_of(ts))
    for seed in (1, 8):
        built.clear()
        hits = idx.search_views(vec[None], 2, grid, _minutiae(seed))
        assert hits[0].template_id == f"t{seed}" and max(built) <= 2
        for hit in hits:
            verified = idx.best_for_subject(vec[None], hit.subject_id, grid, _minutiae(seed))
            assert verified is not None and verified.score == hit.score


def test_identify_builds_missing_sketches_and_keeps_them() -> None:
    vec = _unit(1, 16, 0)[0]
    grid = np.random.default_rng(1).integers(-60, 61, (64, 10, 10)).astype(np.int8)
    idx = GalleryIndex(16, Comparator(GridMatcher(), MinutiaeMatcher(), minutiae_weight=5.0, sketch_shortlist=2))
    for seed in range(1, 6):
        idx.add(f"t{seed}", f"s{seed}", None, vec, grid, _minutiae(seed))
    idx.add("bare", "s-bare", None, vec, grid, None)
    assert all(s is None for s in idx._minutiae.sketches)
    assert idx.search_views(vec[None], 1, grid, _minutiae(4))[0].template_id == "t4"
    assert sum(s is not None for s in idx._minutiae.sketches) == 5  # a template without minutiae has no sketch
    unsketched = GalleryIndex(16, Comparator(GridMatcher(), MinutiaeMatcher(), minutiae_weight=5.0, sketch_shortlist=0))
    unsketched.add("t1", "s1", None, vec, grid, _minutiae(1))
    assert unsketched.warm_sketches(10) == 0 and unsketched._minutiae.sketches == [None]
