"""`fingerprint calibrate`: decision thresholds measured on the operator's own sensor and population.

The card's thresholds come from impostor scores of the two training sensors. On sensors the network
never saw, impostors score a little higher (FVC2000 / FVC2002 at the card's FMR 0.1 % threshold:
0.42 % / 0.28 %, see MODEL_CARD.md), so a deployment that needs its false match rate to hold
measures it on its own labelled impressions and sets MATCH_THRESHOLD. Every cross-finger pair of
each folder is an impostor comparison, scored exactly as the service scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fingerprint.model.dataset import folder_dpi, scan_folder
from fingerprint.model.decode import ImageRejected
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.evaluation.enrollment import best_of_k_scores
from fingerprint.model.evaluation.metrics import fnmr_at_fmr, score_from_cosine, threshold_at_fmr
from fingerprint.model.evaluation.protocol import all_pairs
from fingerprint.model.evaluation.report import similarity_matrix

TARGETS = (0.01, 0.001)


@dataclass(frozen=True)
class Calibration:
    name: str
    genuine: int
    impostor: int
    # per target FMR ("0.01", "0.001"): the threshold reaching it here (None: too few impostor pairs to
    # measure it, fewer than 10 / FMR), the FNMR there, and the FMR the card's threshold gives here
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
        thresholds[key] = threshold_at_fmr(impostor, target) if enough else None
        fnmr[key] = fnmr_at_fmr(genuine, impostor, target) if enough else None
        card_fmr[key] = float((impostor >= card[key]).mean()) if len(impostor) else 0.0
    return Calibration(name, len(genuine), len(impostor), thresholds, fnmr, card_fmr)


def calibrate(dirs: list[Path], embedder: TorchEmbedder, dpi: float | None = None,
              enrolled: int = 1) -> list[Calibration]:
    """One Calibration per folder of `<finger>_<impression>` images, then one over all of them pooled
    (impostor pairs stay within a folder: one sensor's prints against the same sensor's). With
    `enrolled` k > 1, as a gallery enrolling k impressions per finger: fingers hold their first k,
    the later impressions probe, and a probe scores against a finger by its best template (each
    extra template is one more chance for an impostor)."""
    card = {"0.01": embedder.meta.threshold_fmr_1e2, "0.001": embedder.meta.threshold_fmr_1e3}
    out, pooled_gen, pooled_imp = [], [], []
    for folder in dirs:
        imps = scan_folder(folder)
        if len(imps) < 4:
            raise ValueError(f"{folder} holds fewer than 4 `<finger>_<impression>` images")
        set_dpi = dpi or folder_dpi(folder)
        prepared = []
        for imp in imps:
            try:
                prepared.append(embedder.preprocess(imp.path.read_bytes(), set_dpi))
            except ImageRejected:
                prepared.append(embedder.blank())
        embeddings = [e for i in range(0, len(prepared), 32) for e in embedder.embed(prepared[i : i + 32])]
        cos = similarity_matrix(embeddings, embedder.meta.grid_matcher())
        if enrolled > 1:
            scores = best_of_k_scores(cos, [i.finger for i in imps], [i.impression for i in imps], enrolled, enrolled)
            gen, imp_scores = scores.genuine, scores.impostor
        else:
            pairs = all_pairs([i.finger for i in imps])
            # a pair's first image is enrolled, its second the probe, as evaluation scores it
            gen = score_from_cosine(cos[pairs.genuine[:, 1], pairs.genuine[:, 0]])
            imp_scores = score_from_cosine(cos[pairs.impostor[:, 1], pairs.impostor[:, 0]])
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
