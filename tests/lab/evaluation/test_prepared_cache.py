"""The prepared cache: another network reads the same prepared prints; a card that prepares otherwise does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fingerprint.model.decode import ImageRejected
from fingerprint.model.weights import DEFAULT_WEIGHTS
from lab.evaluation.prepared_cache import CachingEmbedder
from tests.conftest import card_variant


def test_a_fold_network_reuses_the_prints_prepared_for_another(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    cache = tmp_path / "prepared"
    first = CachingEmbedder(DEFAULT_WEIGHTS, 16_000_000, cache)
    fresh = first.preprocess(png_prints[0][0], 500.0)
    assert (first.hits, first.misses) == (0, 1)
    # the same preparation under another card (a fold network's) is read back, equal to the last detail
    fold = CachingEmbedder(card_variant(tmp_path / "fold", version="fold"), 16_000_000, cache)
    again = fold.preprocess(png_prints[0][0], 500.0)
    assert (fold.hits, fold.misses) == (1, 0)
    assert torch.equal(again.tensor, fresh.tensor) and again.quality == fresh.quality
    assert again.minutiae is not None and fresh.minutiae is not None
    assert np.array_equal(again.minutiae.points, fresh.minutiae.points)
    assert np.array_equal(again.minutiae.leader, fresh.minutiae.leader)
    # another dpi, or a card whose minutiae window differs, prepares afresh
    fold.preprocess(png_prints[0][0], 600.0)
    wider = CachingEmbedder(card_variant(tmp_path / "wider", minutiae_window=416), 16_000_000, cache)
    wider.preprocess(png_prints[0][0], 500.0)
    assert fold.misses == 1 and wider.misses == 1


def test_a_rejected_image_is_rejected_again_from_the_cache(tmp_path: Path) -> None:
    embedder = CachingEmbedder(DEFAULT_WEIGHTS, 16_000_000, tmp_path)
    for _ in range(2):
        with pytest.raises(ImageRejected):
            embedder.preprocess(b"not an image", 500.0)
    assert (embedder.hits, embedder.misses) == (1, 1)
