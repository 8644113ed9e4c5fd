"""The minutiae sketch that ranks identify's minutiae shortlist: mates rank first, and it is laid out
as the full comparison's cylinders are."""

import numpy as np
import pytest

from fingerprint.model.comparator import Comparator
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate
from fingerprint.model.minutiae.sketch import Sketch, sketch_of, sketch_scores


def test_each_impression_ranks_its_own_fingers_first(minutiae: list[list[MinutiaeTemplate]]) -> None:
    matcher = MinutiaeMatcher(direction_offsets=(-6, 6))
    comparator = Comparator(None, matcher, minutiae_weight=1.0)
    gallery = [t for finger in minutiae for t in finger]
    owner = [f for f, finger in enumerate(minutiae) for _ in finger]
    sketches = comparator.sketches(gallery)
    for k, template in enumerate(gallery):
        probe = matcher.probe(template)
        scores = sketch_scores(sketch_of(probe.stacked, every_row=True), probe.views, sketches)
        assert scores[k] == pytest.approx(scores.max())  # a print is its own best sketch
        others = [j for j in range(len(gallery)) if j != k]
        best_other = max(others, key=lambda j: scores[j])
        assert owner[best_other] == owner[k]
        assert scores.min() >= 0.0 and scores.max() <= 1.0


def test_a_sketch_is_the_cylinders_pooled_and_cut(minutiae: list[list[MinutiaeTemplate]]) -> None:
    cylinders = MinutiaeMatcher().cylinders_of([minutiae[0][0]])[0]
    sketch = sketch_of(cylinders)
    n = int(cylinders.usable.sum())
    assert len(sketch.angles) == n and sketch.bits.shape == (n, 48) and sketch.valid.shape == (n, 8)
    assert sketch.nbytes == n * (4 + 48 + 8)
    # a probe keeps every row (its views' row blocks stay aligned); an unusable one has no valid cell
    every = sketch_of(cylinders, every_row=True)
    assert len(every.angles) == len(cylinders.usable)
    assert not np.unpackbits(every.valid[~cylinders.usable]).any()
    # the bits: cell (2i, 2j)'s square of four, layer by layer
    values = cylinders.values[cylinders.usable].reshape(n, 8, 2, 8, 2, 6).mean(axis=(2, 4))
    valid = cylinders.valid_cells[cylinders.usable].reshape(n, 8, 2, 8, 2).min(axis=(2, 4)) > 0
    expected = ((values > 0.5) & valid[..., None]).transpose(0, 3, 1, 2).reshape(n, -1)
    assert (np.unpackbits(sketch.bits, axis=1) == expected).all()


def test_candidates_without_minutiae_score_zero(minutiae: list[list[MinutiaeTemplate]]) -> None:
    matcher = MinutiaeMatcher()
    probe = matcher.probe(minutiae[0][0])
    own = sketch_of(probe.stacked, every_row=True)
    empty = Sketch(np.zeros(0, np.float32), np.zeros((0, 48), np.uint8), np.zeros((0, 8), np.uint8))
    scores = sketch_scores(own, probe.views, [None, empty, sketch_of(probe.own)])
    assert scores[0] == 0.0 and scores[1] == 0.0 and scores[2] > 0.5
    assert (sketch_scores(own, probe.views, [None, empty]) == 0).all()


def test_the_integer_products_are_the_float_products(minutiae: list[list[MinutiaeTemplate]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The sketch's counts are products of bits summed in int32: the same numbers float32 gives."""
    from fingerprint.model.minutiae import sketch

    matcher = MinutiaeMatcher(direction_offsets=(-6, 6))
    gallery = Comparator(None, matcher, minutiae_weight=1.0).sketches([t for finger in minutiae for t in finger])
    probe = matcher.probe(minutiae[1][0])
    own = sketch_of(probe.stacked, every_row=True)
    exact = sketch_scores(own, probe.views, gallery)
    monkeypatch.setattr(sketch, "_counts", lambda a, b: (a.float() @ b.float().T).numpy())
    np.testing.assert_array_equal(exact, sketch_scores(own, probe.views, gallery))
