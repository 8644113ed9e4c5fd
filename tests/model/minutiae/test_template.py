"""Stored minutiae survive the byte layout; bytes that do not parse are refused, not guessed."""

import math

import numpy as np
import pytest

from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.model.minutiae import MinutiaeFormatError, MinutiaeTemplate


def _template(n: int = 5) -> MinutiaeTemplate:
    rng = np.random.default_rng(1)
    pts = np.c_[rng.integers(0, 320, (n, 2)), rng.uniform(0, 2 * math.pi, n)].astype(np.float32)
    return MinutiaeTemplate(pts, rng.random((20, 20)) > 0.3)


def test_round_trip_keeps_points_mask_and_angles_within_a_step() -> None:
    t = _template()
    back = MinutiaeTemplate.from_bytes(t.to_bytes())
    np.testing.assert_array_equal(back.foreground, t.foreground)
    np.testing.assert_array_equal(back.points[:, :2], t.points[:, :2])
    gap = np.abs(np.remainder(back.points[:, 2] - t.points[:, 2] + math.pi, 2 * math.pi) - math.pi)
    assert gap.max() < 2 * math.pi / 65536


def test_no_minutiae_round_trip() -> None:
    t = MinutiaeTemplate(np.zeros((0, 3), np.float32), np.zeros((20, 20), bool))
    assert len(MinutiaeTemplate.from_bytes(t.to_bytes()).points) == 0


def test_truncated_bytes_are_refused() -> None:
    with pytest.raises(MinutiaeFormatError):
        MinutiaeTemplate.from_bytes(_template().to_bytes()[:-1])


def test_codec_stores_minutiae_after_the_grid_and_reads_older_layouts() -> None:
    codec = EmbeddingCodec()
    vec = np.ones(8, np.float32) / math.sqrt(8)
    grid = np.arange(64 * 4, dtype=np.int64).reshape(64, 2, 2).astype(np.int8)
    t = _template()
    _, g, m = codec.decode("x", codec.encode("x", vec, grid, t))
    assert g is not None and m is not None
    np.testing.assert_array_equal(g, grid)
    np.testing.assert_array_equal(m.points[:, :2], t.points[:, :2])
    _, g2, m2 = codec.decode("x", codec.encode("x", vec, grid))
    assert g2 is not None and m2 is None


def test_leaders_minutiae_ride_along_and_old_templates_still_parse() -> None:
    rng = np.random.default_rng(3)
    own = np.column_stack([rng.integers(0, 400, (12, 2)), rng.random(12) * 6.28]).astype(np.float32)
    leader = np.column_stack([rng.integers(0, 400, (9, 2)), rng.random(9) * 6.28]).astype(np.float32)
    mask = rng.random((25, 25)) > 0.3
    both = MinutiaeTemplate(own, mask, leader)
    back = MinutiaeTemplate.from_bytes(both.to_bytes())
    assert back.leader is not None and np.allclose(back.leader, leader, atol=1e-3)
    assert back.leader_template() is not None and np.array_equal(back.leader_template().foreground, mask)
    old = MinutiaeTemplate.from_bytes(MinutiaeTemplate(own, mask).to_bytes())
    assert old.leader is None and old.leader_template() is None
    with pytest.raises(MinutiaeFormatError):
        MinutiaeTemplate.from_bytes(both.to_bytes()[:-1])


def test_a_print_counts_the_minutiae_it_is_compared_by_leaders_where_found() -> None:
    own = _template(7)
    assert own.count == 7
    assert MinutiaeTemplate(own.points, own.foreground, own.points[:3]).count == 3
    assert MinutiaeTemplate(own.points, own.foreground, np.zeros((0, 3), np.float32)).count == 0
