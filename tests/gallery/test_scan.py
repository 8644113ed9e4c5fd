"""The scan is exact: the same top-k as brute force float32 over the stored float16 rows, across chunks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fingerprint.gallery import scan
from fingerprint.gallery.scan import best_rows


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_top_k_matches_brute_force_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "CHUNK", 100)  # several chunks, each keeping its own top-k
    vecs = _unit(1000, 64, 0)
    matrix = torch.zeros(1200, 64, dtype=torch.float16)  # capacity beyond the rows in use is never read
    matrix[:1000] = torch.from_numpy(vecs).to(torch.float16)
    matrix[1000:] = torch.from_numpy(_unit(200, 64, 2)).to(torch.float16)
    probes = _unit(5, 64, 1)
    stored = vecs.astype(np.float16).astype(np.float32)
    for probe, (scores, rows) in zip(probes, best_rows(matrix, 1000, probes, 10), strict=True):
        exact = stored @ probe
        assert rows == np.argsort(-exact)[:10].tolist()
        assert np.allclose(scores, exact[rows], atol=1e-6)
        assert all(a >= b for a, b in itertools.pairwise(scores))


def test_fewer_rows_than_asked_and_an_empty_matrix() -> None:
    vecs = _unit(3, 8, 0)
    matrix = torch.from_numpy(vecs).to(torch.float16)
    [(scores, rows)] = best_rows(matrix, 3, vecs[:1], 10)
    assert rows[0] == 0 and sorted(rows) == [0, 1, 2] and len(scores) == 3
    assert best_rows(matrix, 0, vecs[:2], 10) == [([], []), ([], [])]
