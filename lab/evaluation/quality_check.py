"""Does the quality score predict matching errors? Its agreement with NFIQ 2 and its error-versus-discard
curve (ISO/IEC 29794-1): discard the comparisons whose worse image scores lowest and watch the false
non-match rate at the served threshold fall. A useful quality score makes it fall faster than a
random discard would; NFIQ 2, the standard score, is the reference when `--baseline nbis` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DISCARD_FRACTIONS = (0.0, 0.05, 0.1, 0.2)


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    r = np.empty(len(values), dtype=np.float64)
    r[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=r)
    return np.asarray(sums[inverse] / counts[inverse])


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation over the entries both define (NaN = undefined); None if < 3 or constant."""
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 3:
        return None
    ra, rb = ranks(a[keep]), ranks(b[keep])
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def fnmr_after_discard(pairs: np.ndarray, scores: np.ndarray, quality: np.ndarray, threshold: float,
                       fractions: tuple[float, ...] = DISCARD_FRACTIONS) -> list[float]:
    """FNMR of genuine `pairs` (G, 2) with `scores` at `threshold` after discarding, for each fraction,
    that share of the comparisons whose worse image has the lowest `quality` (NaN counts as lowest)."""
    pair_quality = np.nan_to_num(quality, nan=-np.inf)[pairs].min(axis=1)
    order = np.argsort(pair_quality, kind="stable")
    out = []
    for fraction in fractions:
        kept = order[round(fraction * len(order)) :]
        out.append(float((scores[kept] < threshold).mean()) if len(kept) else 0.0)
    return out


@dataclass
class QualityResult:
    threshold: float  # the served threshold (the card's FMR 0.1 % one)
    fractions: list[float]
    fnmr_discard_ours: list[float]
    ours_mean: float
    fnmr_discard_nfiq2: list[float] = field(default_factory=list)
    spearman_vs_nfiq2: float | None = None
    nfiq2_mean: float | None = None

    @classmethod
    def of(cls, pairs: np.ndarray, scores: np.ndarray, ours: np.ndarray, threshold: float,
           nfiq2: np.ndarray | None = None) -> QualityResult:
        result = cls(threshold, list(DISCARD_FRACTIONS), fnmr_after_discard(pairs, scores, ours, threshold),
                     float(ours.mean()))
        if nfiq2 is not None:
            result.fnmr_discard_nfiq2 = fnmr_after_discard(pairs, scores, nfiq2, threshold)
            result.spearman_vs_nfiq2 = spearman(ours, nfiq2)
            result.nfiq2_mean = float(np.nanmean(nfiq2)) if not np.isnan(nfiq2).all() else None
        return result
