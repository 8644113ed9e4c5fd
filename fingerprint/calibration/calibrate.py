"""`fingerprint calibrate`: decision thresholds measured on the operator's own sensor and population.

The card's thresholds come from impostor scores of the sensors it was calibrated on. On sensors the
network never saw, impostors (and genuine pairs) score differently, so a deployment that needs its
false match rate to hold measures it on its own labelled impressions and sets MATCH_THRESHOLD. Every cross-finger pair of
each folder is an impostor comparison, scored exactly as the service scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fingerprint.calibration.enrollment import best_of_k_scores
from fingerprint.calibration.folder import Progress, pair_scores_of, score_folder
from fingerprint.calibration.metrics import threshold_at_fmr
from fingerprint.calibration.protocol import all_pairs
from fingerprint.gallery.impostors import card_threshold
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.minutiae.match import one_blas_thread

TARGETS = (0.01, 0.001)


@dataclass(frozen=True)
class Calibration:
    name: str
    genuine: int
    impostor: int
    # per target FMR ("0.01", "0.001"): the threshold reaching it here (None: too few impostor pairs to
    # measure it, fewer than 10 / FMR), the FNMR there, and the FMR here of the card's threshold (its prior,
    # or its synthetic floor where higher: what the service decides with before its gallery has an estimate)
    thresholds: dict[str, float | None]
    fnmr: dict[str, float | None]
    card_fmr: dict[str, float]


def _measure(name: str, genuine: np.ndarray, impostor: np.ndarray, card: dict[str, float]) -> Calibration:
    thresholds: dict[str, float | None] = {}
    fnmr: dict[str, float | None] = {}
    card_fmr: dict[str, float] = {}
    for target in TARGETS:
        key = f"{target:g}"
        enough = len(impostor) >= 10 / target  # ten impostors above the threshold at least
        threshold = threshold_at_fmr(impostor, target) if enough else None
        thresholds[key] = threshold
        fnmr[key] = None if threshold is None else float((genuine < threshold).mean())
        card_fmr[key] = float((impostor >= card[key]).mean()) if len(impostor) else 0.0
    return Calibration(name, len(genuine), len(impostor), thresholds, fnmr, card_fmr)


def calibrate(dirs: list[Path], embedder: TorchEmbedder, dpi: float | None = None,
              enrolled: int = 1, progress: Progress | None = None) -> list[Calibration]:
    """One Calibration per folder of `<finger>_<impression>` images, then one over all of them pooled
    (impostor pairs stay within a folder: one sensor's prints against the same sensor's). With
    `enrolled` k > 1, as a gallery enrolling k impressions per finger: fingers hold their first k,
    the later impressions probe, and a probe scores against a finger by its best template (each
    extra template is one more chance for an impostor)."""
    one_blas_thread()  # as the service compares
    card = {f"{t:g}": card_threshold(embedder.meta, t) for t in TARGETS}
    out, pooled_gen, pooled_imp = [], [], []
    for folder in dirs:
        scored = score_folder(folder, embedder, dpi, progress=progress)
        imps, cos = scored.impressions, scored.cos
        if enrolled > 1:
            scores = best_of_k_scores(cos, [i.finger for i in imps], [i.impression for i in imps], enrolled, enrolled)
            gen, imp_scores = scores.genuine, scores.impostor
        else:
            pairs = all_pairs([i.finger for i in imps])
            gen, imp_scores = pair_scores_of(cos, pairs.genuine), pair_scores_of(cos, pairs.impostor)
        out.append(_measure(folder.name, gen, imp_scores, card))
        pooled_gen.append(gen)
        pooled_imp.append(imp_scores)
    if len(dirs) > 1:
        out.append(_measure("all", np.concatenate(pooled_gen), np.concatenate(pooled_imp), card))
    return out


def as_report(results: list[Calibration], card_version: str, enrolled: int = 1) -> dict[str, Any]:
    overall = results[-1]
    suggested = overall.thresholds["0.001"]
    return {"model_version": card_version, "enrolled_per_finger": enrolled, "sets": [asdict(r) for r in results],
            "suggested_match_threshold": suggested}
