"""The exact scan of the search vectors: which rows of a float16 matrix have the best cosines.

The gallery is multiplied in float16 directly (no float32 copy of it), a running top-k is kept per
chunk (no full sort), and the few rows kept are re-scored in float32 so that scores and order are exact.
"""

from __future__ import annotations

import numpy as np
import torch

CHUNK = 262144
# extra candidates that absorb float16 rounding in the scan's ranking
RESCORE_MARGIN = 32


def best_rows(matrix: torch.Tensor, size: int, probes: np.ndarray, k: int) -> list[tuple[list[float], list[int]]]:
    """For each probe (P, D), the float32 cosines and rows of its best min(k, size) of the first `size` rows
    of `matrix`, best first."""
    k = min(k, size)
    if k == 0:
        return [([], []) for _ in range(len(probes))]
    q32 = torch.from_numpy(np.ascontiguousarray(probes, dtype=np.float32))
    q16 = q32.to(torch.float16)
    wide = min(size, k + RESCORE_MARGIN)
    kept_scores = torch.empty((len(probes), 0))
    kept_rows = torch.empty((len(probes), 0), dtype=torch.long)
    for start in range(0, size, CHUNK):
        sims = (q16 @ matrix[start : min(size, start + CHUNK)].T).float()
        s, r = torch.topk(sims, min(wide, sims.shape[1]), dim=1)
        kept_scores = torch.cat([kept_scores, s], dim=1)
        kept_rows = torch.cat([kept_rows, r + start], dim=1)
        if kept_scores.shape[1] > wide:
            kept_scores, keep = torch.topk(kept_scores, wide, dim=1)
            kept_rows = torch.gather(kept_rows, 1, keep)
    out = []
    for p in range(len(probes)):
        rows = kept_rows[p]
        scores, order = torch.topk(matrix[rows].float() @ q32[p], k)
        out.append((scores.tolist(), rows[order].tolist()))
    return out


def best_among(matrix: torch.Tensor, rows: list[int], probe: np.ndarray, k: int) -> tuple[list[float], list[int]]:
    """The float32 cosines and rows of the probe's best min(k, ...) of `rows` (duplicates counted once), best first."""
    rows = list(dict.fromkeys(rows))
    if not rows:
        return [], []
    cos = matrix[rows].float() @ torch.from_numpy(np.asarray(probe, dtype=np.float32))
    scores, order = torch.topk(cos, min(k, len(rows)))
    return scores.tolist(), [rows[i] for i in order.tolist()]
