"""End to end with the shipped model: same finger scores above different fingers."""

from __future__ import annotations

import itertools

import numpy as np

from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.weights import DEFAULT_WEIGHTS


def test_same_finger_outscores_different_fingers(png_prints: list[list[bytes]]) -> None:
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000)
    views = [embedder.embed([embedder.preprocess(b, 500.0) for b in finger]) for finger in png_prints]

    def score(enrolled: np.ndarray, probe: np.ndarray) -> float:  # as the service: best probe view
        return float((probe @ enrolled[0]).max())

    genuine = [score(v[i], v[j]) for v in views for i, j in itertools.combinations(range(len(v)), 2)]
    impostor = [score(a[i], b[j]) for a, b in itertools.combinations(views, 2) for i in range(3) for j in range(3)]
    assert np.mean(genuine) > np.mean(impostor) + 0.1
    assert np.median(genuine) > np.percentile(impostor, 90)


def test_embedding_is_deterministic_and_unit_length(png_prints: list[list[bytes]]) -> None:
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000)
    p = embedder.preprocess(png_prints[0][0], 500.0)
    a = embedder.embed([p])
    b = embedder.embed([p, embedder.preprocess(png_prints[1][0], 500.0)])
    assert a.shape[:2] == (1, (2 * embedder.meta.probe_shift_radius + 1) ** 2)
    assert np.allclose(a[0], b[0], atol=1e-5)
    assert np.allclose(np.linalg.norm(a[0], axis=-1), 1.0, atol=1e-4)
