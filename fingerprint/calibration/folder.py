"""A folder of `<finger>_<impression>` images embedded and compared all against all, as the service scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fingerprint.calibration.dataset import Impression, folder_dpi, scan_folder
from fingerprint.model.comparator import Comparator
from fingerprint.model.decode import ImageRejected
from fingerprint.model.embedder import Embedding, PreparedImage, TorchEmbedder
from fingerprint.model.minutiae import MinutiaeTemplate


def pair_scores_of(cos: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """`cos[probe, enrolled]` as scores; a pair's first image is enrolled, its second is the probe."""
    return Comparator.to_score(cos[pairs[:, 1], pairs[:, 0]])


@dataclass(frozen=True)
class ScoredFolder:
    impressions: list[Impression]
    dpi: float
    prepared: list[PreparedImage]
    cos: np.ndarray  # [probe, enrolled] over every image of the folder, as the service compares


Progress = Callable[[str], None]


def prepared_or_blank(embedder: TorchEmbedder, data: bytes, dpi: float, probe: bool = False) -> PreparedImage:
    """An image prepared for the embedder, or a blank print where it is rejected: in an evaluation a
    failure to enroll still takes part (and fails), rather than leaving the set."""
    try:
        return embedder.preprocess(data, dpi, probe=probe)
    except ImageRejected:
        return embedder.blank()


def embedded(embedder: TorchEmbedder, prepared: list[PreparedImage], batch: int = 32) -> list[Embedding]:
    return [e for i in range(0, len(prepared), batch) for e in embedder.embed(prepared[i : i + batch])]


def score_folder(folder: Path, embedder: TorchEmbedder, dpi: float | None,
                 comparator: Comparator | None = None, progress: Progress | None = None) -> ScoredFolder:
    """Every `<finger>_<impression>` image of a folder prepared, embedded and compared with every
    other (by the card's comparator unless one is given); an unreadable image takes part as a blank
    print (a failure to enroll still counts)."""
    imps = scan_folder(folder)
    if len(imps) < 4:
        raise ValueError(f"{folder} holds fewer than 4 `<finger>_<impression>` images")
    set_dpi = dpi or folder_dpi(folder)
    prepared: list[PreparedImage] = []
    # a card whose probes find their minutiae with another network: each image also as a probe
    probes: list[MinutiaeTemplate | None] | None = [] if embedder.distinct_probe_minutiae else None
    step = max(1, len(imps) // 10)  # a line per tenth: a large folder takes minutes
    for n, imp in enumerate(imps, start=1):
        data = imp.path.read_bytes()
        prepared.append(prepared_or_blank(embedder, data, set_dpi))
        if probes is not None:
            probes.append(prepared_or_blank(embedder, data, set_dpi, probe=True).minutiae)
        if progress and (n % step == 0 or n == len(imps)):
            progress(f"{folder.name}: {n}/{len(imps)} images read")
    embeddings = embedded(embedder, prepared)
    if progress:
        progress(f"{folder.name}: comparing {len(imps) * len(imps)} pairs")
    comparing = comparator or Comparator.from_card(embedder.meta)
    if probes is None:
        probes = [e.minutiae for e in embeddings]
    # the enrolled side as the gallery stores it, each probe's as found: as a verify compares them
    stored = [replace(e, minutiae=None if e.minutiae is None else e.minutiae.as_stored()) for e in embeddings]
    return ScoredFolder(imps, set_dpi, prepared, comparing.all_pairs(stored, probes))
