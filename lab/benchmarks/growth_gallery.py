"""The galleries `gallery_growth` and the lab's fold evaluations measure: every finger of the shared sets
enrolled once (its first impression enrolment accepts), synthetic distractor fingers beside them, and the
decision threshold the service would estimate from them. Embeddings are cached per set and per distractor
block, so a run can be resumed or grown.
"""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.calibration.folder import embedded, prepared_or_blank
from fingerprint.gallery.impostors import DecisionThreshold, ImpostorEstimator, ImpostorSample, SyntheticTail
from fingerprint.gallery.index import GalleryIndex
from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import Embedding, TorchEmbedder
from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.weights import ModelMeta
from lab.synth.export import single_impression_blocks, single_impressions
from lab.training.real_data import finger_identity

DISTRACTOR_SEED = 8_000_000  # outside the training bank's seeds and the card's synthetic impostors'


@dataclass
class Print:
    set_name: str
    finger: str
    impression: int
    embedding: Embedding  # as enrolled
    probe_minutiae: MinutiaeTemplate | None  # as found for a probe (the card's probe network), if it differs


def _embed(embedder: TorchEmbedder, images: list[tuple[bytes, float]]) -> list[Embedding]:
    return embedded(embedder, [prepared_or_blank(embedder, data, dpi) for data, dpi in images], batch=16)


def _probe_minutiae(embedder: TorchEmbedder, images: list[tuple[bytes, float]]) -> list[MinutiaeTemplate | None]:
    return [prepared_or_blank(embedder, data, dpi, probe=True).minutiae for data, dpi in images]


def _cached(path: Path, make: Any) -> Any:
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def load_sets(dirs: list[Path], embedder: TorchEmbedder, cache: Path) -> list[Print]:
    prints: list[Print] = []
    tag = embedder.meta.version
    for folder in dirs:
        imps = scan_folder(folder)
        dpi = folder_dpi(folder)
        embeddings = _cached(cache / tag / f"{folder.name}.pkl",
                             lambda imps=imps, dpi=dpi: _embed(embedder, [(i.path.read_bytes(), dpi) for i in imps]))
        probes = [None] * len(imps)
        if embedder.distinct_probe_minutiae:
            probes = _cached(cache / tag / f"{folder.name}-fast-probes.pkl",
                             lambda imps=imps, dpi=dpi: _probe_minutiae(embedder, [(i.path.read_bytes(), dpi) for i in imps]))
        prints += [Print(folder.name, i.finger, i.impression, e, m)
                   for i, e, m in zip(imps, embeddings, probes, strict=True)]
    return prints


def synthetic_fingers(n: int, embedder: TorchEmbedder, cache: Path, first_seed: int = DISTRACTOR_SEED) -> list[Embedding]:
    """One enrolled impression each of synthetic fingers first_seed.., embedded in cached blocks."""
    out: list[Embedding] = []
    for seeds in single_impression_blocks(n, first_seed):
        out += _cached(cache / embedder.meta.version / f"synthetic-{seeds[0]}-{len(seeds)}.pkl",
                       lambda seeds=seeds: _embed(embedder, [(png, 500.0) for png in single_impressions(seeds)]))
    return out


def subject_of(set_name: str, finger: str) -> str:
    return finger_identity(f"{set_name}/{finger}")


def enrolled_prints(prints: list[Print], min_minutiae: int = 0) -> dict[tuple[str, str], int]:
    """Each finger's first impression that enrolment accepts (at least `min_minutiae` minutiae, as
    MIN_ENROLL_MINUTIAE refuses the rest); a finger with none is not enrolled."""
    enrolled: dict[tuple[str, str], int] = {}
    for k in sorted(range(len(prints)), key=lambda k: prints[k].impression):
        p, key = prints[k], (prints[k].set_name, prints[k].finger)
        found = p.embedding.minutiae
        if key not in enrolled and (found is None or found.count >= min_minutiae):
            enrolled[key] = k
    return enrolled


@dataclass
class Gallery:
    index: GalleryIndex
    enrolled: dict[tuple[str, str], int]  # (set, finger) -> the print enrolled
    threshold: float  # as the service decides: the gallery's own estimate at the target FMR, else the card's
    source: str  # which of the two
    sample: ImpostorSample  # the gallery's impostor scores


def build(prints: list[Print], extra: list[Embedding], comparator: Comparator, target_fmr: float, meta: ModelMeta,
          min_minutiae: int = 0) -> Gallery:
    index = GalleryIndex(meta.embedding_dim, comparator)
    enrolled = enrolled_prints(prints, min_minutiae)
    for (set_name, finger), k in enrolled.items():
        e = prints[k].embedding
        index.add(f"{set_name}/{finger}", subject_of(set_name, finger), None, e.views[0], e.dense, e.minutiae)
    for j, e in enumerate(extra):
        if e.minutiae is not None and e.minutiae.count < min_minutiae:
            continue  # enrolment would refuse it
        index.add(f"distractor/{j}", f"distractor/{j}", None, e.views[0], e.dense, e.minutiae)
    while index.warm_sketches(1024):  # as the service does in the background once loaded
        pass
    sample = ImpostorSample()
    asyncio.run(ImpostorEstimator(index, sample, busy_share=1.0).catch_up())  # nothing else to serve
    decision = DecisionThreshold(target_fmr, meta.threshold_fmr_1e3, None, sample, meta.impostor_tail_factor,
                                 SyntheticTail.of_card(meta)).estimate()
    return Gallery(index, enrolled, decision.value, decision.source, sample)
