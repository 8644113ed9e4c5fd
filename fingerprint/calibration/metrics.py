"""Verification and identification error rates from score arrays (higher score = more similar)."""

from __future__ import annotations

import numpy as np


def det_points(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FMR and FNMR at every distinct score used as the acceptance threshold (score >= t)."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    imp = np.sort(impostor)
    gen = np.sort(genuine)
    fmr = 1.0 - np.searchsorted(imp, thresholds, side="left") / len(imp)
    fnmr = np.searchsorted(gen, thresholds, side="left") / len(gen)
    return fmr, fnmr


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal error rate: where the false match and false non-match rates cross (FVC convention)."""
    fmr, fnmr = det_points(genuine, impostor)
    i = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[i] + fnmr[i]) / 2)


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float | None:
    """FNMR at the lowest threshold whose FMR <= fmr; None when too few impostors to measure it."""
    if len(impostor) < 1.0 / fmr:
        return None
    t = threshold_at_fmr(impostor, fmr)
    return float((genuine < t).mean())


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Smallest threshold such that the share of impostor scores >= it is at most fmr."""
    s = np.sort(impostor)[::-1]
    allowed = int(np.floor(fmr * len(s)))
    # accepting exactly `allowed` impostors: the threshold sits just above the next one
    return float(np.nextafter(s[allowed], np.inf)) if allowed < len(s) else float(s[-1])


def cmc(similarity: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray, ranks: int) -> np.ndarray:
    """Cumulative match characteristic: share of probes whose mate is within the top r, r=1..ranks."""
    order = np.argsort(-similarity, axis=1)
    hits = gallery_labels[order] == probe_labels[:, None]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), similarity.shape[1])
    return np.array([(first < r).mean() for r in range(1, ranks + 1)])
