"""Shortlist recall at a gallery size: a mate survives a stage while the share of impostors outscoring it,
scaled to the gallery, stays under the stage's shortlist."""

from __future__ import annotations

import numpy as np
import torch

from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import Embedding
from lab.evaluation.shortlist_recall import outscoring_shares, survives


def _unit(*v: float) -> np.ndarray:
    a = np.array(v, np.float32)
    return a / np.linalg.norm(a)


def _embedding(*views: np.ndarray) -> Embedding:
    return Embedding(np.stack(views), np.zeros((1, 1, 1), np.int8), None)


def test_shares_count_the_impostors_above_the_best_mate_at_each_stage() -> None:
    probe = _embedding(_unit(1, 0, 0), _unit(0, 1, 0))  # centred view, then a shifted one
    templates = [_embedding(_unit(0.6, 0.8, 0)), _embedding(_unit(0.9, 0.1, 0)), _embedding(_unit(0, 1, 0)),
                 _embedding(_unit(0, 0, 1))]
    impostors = np.array([False, True, True, True])
    shares = outscoring_shares(probe, [0], templates, impostors, Comparator(), torch.zeros(4, 1, 1, 1))
    # centred: 0.9 beats the mate's 0.6; best view: 0.9 and 1.0 beat its 0.8; no grid: as the best view
    assert np.allclose(shares, [1 / 3, 2 / 3, 2 / 3])
    mate_first = outscoring_shares(probe, [0, 2], templates, impostors & ~np.eye(4, dtype=bool)[2], Comparator(),
                                   torch.zeros(4, 1, 1, 1))
    assert np.allclose(mate_first, [0.5, 0.0, 0.0])  # a subject's best template is its mate


def test_a_mate_survives_only_when_every_stage_keeps_it() -> None:
    shares = np.array([[0.01, 0.001, 0.0001], [0.2, 0.0, 0.0], [0.01, 0.01, 0.0], [0.0, 0.0, 0.004]])
    assert survives(shares, 10_000, (1024, 256, 64)).tolist() == [True, False, True, True]
    assert survives(shares, 100_000, (1024, 256, 64)).tolist() == [True, False, False, False]
    assert survives(shares, 1_000, (256, 64, 32)).tolist() == [True, True, True, True]
