"""Genuine and impostor scores of every pair of a labelled set, scored as the service scores them:
what validation picks checkpoints by and calibration sets thresholds with."""

from __future__ import annotations

import numpy as np
import torch

from fingerprint.model.comparator import Comparator
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate, extract_minutiae
from fingerprint.model.preprocess import prepare

Pairs = tuple[np.ndarray, np.ndarray]


def pair_masks(labels: np.ndarray, sensors: np.ndarray | None = None) -> tuple[Pairs, np.ndarray, np.ndarray]:
    """Every pair i < j: its indices, whether it is genuine, and whether it is an impostor pair.
    With `sensors`, impostors are pairs from one sensor only: a deployment compares prints of one
    sensor, and two sensors' prints of different fingers score lower than one sensor's, so thresholds
    calibrated with them promise a false match rate one sensor does not keep (3.3.0's FMR 0.1 %
    threshold let 0.42-0.73 % of the FVC sets' impostors through; from one-sensor pairs, 3.3.1's lets
    0.10-0.21 % through: docs/experiments.md)."""
    iu = np.triu_indices(len(labels), k=1)
    same = labels[iu[0]] == labels[iu[1]]
    impostor = ~same if sensors is None else ~same & (sensors[iu[0]] == sensors[iu[1]])
    return iu, same, impostor


def grid_cosines(views: torch.Tensor, cells: torch.Tensor, comparator: Comparator) -> np.ndarray:
    """(N, N) grid cosines by the comparator, [enrolled, probe]: row i enrolled (view 0), column j the
    probe (its best view), as the service compares."""
    v = views.numpy()
    view_cos = torch.from_numpy(comparator.view_cosines(v, v[:, 0]))
    cos = comparator.grid_cosines(cells, cells, view_cos)  # [probe, enrolled]
    out: np.ndarray = cos.numpy().T
    return out


def minutiae_all_pairs(canvases: torch.Tensor, window: int, batch: int = 32,
                       matcher: MinutiaeMatcher | None = None) -> np.ndarray:
    """(N, N) minutiae scores of every pair of training canvases, found on the enhanced ridge map of
    the `window` crop (the card's minutiae window) as the service finds them, compared by `matcher`
    (the card's; default: directions as found)."""
    templates: list[MinutiaeTemplate] = []
    with torch.inference_mode():
        for i in range(0, len(canvases), batch):
            enhanced = prepare(canvases[i : i + batch], window).minutiae_map
            templates.extend(extract_minutiae(e) for e in enhanced)
    return (matcher or MinutiaeMatcher()).all_pairs(templates)


def dense_pair_scores(views: torch.Tensor, cells: torch.Tensor, labels: torch.Tensor,
                      comparator: Comparator, sensors: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs genuine and impostor scores in [0, 1] by the comparator, as the service scores:
    row i enrolled, row j > i the probe. `sensors`: impostors from one sensor only (`pair_masks`)."""
    sim = Comparator.to_score(grid_cosines(views, cells, comparator))
    iu, same, impostor = pair_masks(labels.numpy(), None if sensors is None else sensors.numpy())
    return sim[iu][same], sim[iu][impostor]


def pair_scores(views: torch.Tensor, labels: torch.Tensor, sensors: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs genuine and impostor scores in [0, 1] from (N, K, D) views, scored as the service
    does: row i enrolled (view 0), row j > i the probe (its best view). `sensors` as above."""
    v = views.numpy()
    sim = Comparator.to_score(Comparator.view_cosines(v, v[:, 0]).T)
    iu, same, impostor = pair_masks(labels.numpy(), None if sensors is None else sensors.numpy())
    scores = sim[iu]
    return scores[same], scores[impostor]
