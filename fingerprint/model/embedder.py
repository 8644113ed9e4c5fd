"""The interface the service's batcher calls: preprocess one image, embed a batch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from fingerprint.model.decode import ImageRejected, decode, resolve_dpi, to_target_dpi
from fingerprint.model.dense import dense_grid, to_int8
from fingerprint.model.leader import finder, window_minutiae
from fingerprint.model.minutiae import MinutiaeTemplate, extract_minutiae
from fingerprint.model.minutiae.extract import MASK_CELL_PX
from fingerprint.model.network import PRECISIONS, bfloat16_is_native, inference_copy
from fingerprint.model.preprocess import prepare
from fingerprint.model.student import finder as student_finder
from fingerprint.model.weights import ModelMeta, WeightsError, load_leader, load_probe_minutiae, load_weights


@dataclass(frozen=True)
class LeaderSource:
    """What LEADER reads to find a probe's minutiae after all (`Embedder.refine`): kept only for probes whose
    minutiae the distilled network found."""

    gray: np.ndarray  # the 500 dpi print (H, W) uint8
    origin: tuple[int, int]  # the minutiae window's top-left corner in it (row, column)


@dataclass(frozen=True)
class PreparedImage:
    tensor: torch.Tensor  # (2, S, S), S = the card's window / 2, see preprocess.Prepared
    quality: float
    minutiae: MinutiaeTemplate | None = None  # for models that compare minutiae (card minutiae_weight)
    leader_source: LeaderSource | None = None  # a fast probe's print, for LEADER when its answer is doubtful


@dataclass(frozen=True)
class Embedding:
    """What the network makes of one print. `views[0]` is the search vector that is enrolled; all
    views are compared when the print is the probe (`ModelMeta.probe_shift_radius`). `dense` is the
    int8 grid of local descriptors (model/dense.py) for models that verify and re-rank with it."""

    views: np.ndarray  # (K, D) float32 unit vectors
    dense: np.ndarray | None  # (C, H, W) int8, or None when the model card says dense_matching false
    minutiae: MinutiaeTemplate | None = None


class Embedder(Protocol):
    @property
    def meta(self) -> ModelMeta: ...

    @property
    def precision(self) -> str:
        """What the search network's and the fast probe network's convolutions compute in: "float32" or
        "bfloat16" (LEADER's always float32)."""
        ...

    @property
    def distinct_probe_minutiae(self) -> bool:
        """Whether probes find LEADER's minutiae with another network than enrolment's (fast probes)."""
        ...

    def preprocess(self, data: bytes, dpi: float | None, probe: bool = False) -> PreparedImage:
        """Decode and prepare (`dpi` None: the header's, else 500); raises ImageRejected for unusable input.
        `probe`: the print is compared and not stored (identify, verify), so the card's faster probe
        minutiae network may stand in for LEADER."""
        ...

    def embed(self, batch: list[PreparedImage]) -> list[Embedding]:
        """One Embedding per prepared image, in order."""
        ...

    def refine(self, minutiae: MinutiaeTemplate, source: LeaderSource) -> MinutiaeTemplate:
        """A fast probe's `minutiae` with LEADER's own minutiae in place of the distilled network's."""
        ...


class TorchEmbedder:
    def __init__(self, weights: Path, max_pixels: int, threads: int = 0, precision: str = "auto",
                 fast_probes: bool = False) -> None:
        """`precision` "auto": bfloat16 where this CPU computes it natively, else float32. `fast_probes`:
        probes find LEADER's minutiae with the card's network distilled from it (a fraction of LEADER's
        time, less accurate alone: model card), and `refine` finds them with LEADER where the answer is
        doubtful; enrolment always runs LEADER."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
        if threads > 0:  # torch's intra-op pool is process-wide; 0 keeps its default of one per core
            torch.set_num_threads(threads)
        model, self._meta = load_weights(weights)
        leader = load_leader(weights, self._meta)
        self._leader = None if leader is None else finder(leader)
        distilled = load_probe_minutiae(weights, self._meta) if fast_probes else None
        if fast_probes and distilled is None:
            raise WeightsError(f"fast probes need a card with LEADER and a probe minutiae network; {weights}'s has none")
        if precision == "auto":
            precision = "bfloat16" if bfloat16_is_native() else "float32"
        self._precision = precision
        dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        self._probe_finder = self._leader if distilled is None else student_finder(distilled, dtype)
        self._model = inference_copy(model, dtype)
        self._max_pixels = max_pixels

    @property
    def meta(self) -> ModelMeta:
        return self._meta

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def distinct_probe_minutiae(self) -> bool:
        """Whether probes find LEADER's minutiae with another network than enrolment's."""
        return self._probe_finder is not self._leader

    def preprocess(self, data: bytes, dpi: float | None, probe: bool = False) -> PreparedImage:
        gray, header_dpi = decode(data, self._max_pixels)
        gray = to_target_dpi(gray, resolve_dpi(dpi, header_dpi))
        with torch.inference_mode():
            prepared = prepare(torch.from_numpy(gray.astype(np.float32))[None, None], self._meta.window,
                               self._meta.minutiae_crop())
            # minutiae come from the enhanced map the network reads (over a larger window), here on the
            # extraction stage's thread rather than in the batched forward pass
            minutiae = extract_minutiae(prepared.minutiae_map[0]) if self._meta.minutiae_weight > 0 else None
            find = self._probe_finder if probe else self._leader
            source = None
            if minutiae is not None and find is not None and prepared.origin is not None:
                # LEADER reads the raw print (its training input), over the same window and foreground
                origin = (int(prepared.origin[0, 0]), int(prepared.origin[0, 1]))
                leader = window_minutiae(find, gray, origin, minutiae.foreground, MASK_CELL_PX)
                minutiae = MinutiaeTemplate(minutiae.points, minutiae.foreground, leader)
                source = LeaderSource(gray, origin) if find is not self._leader else None
        return PreparedImage(tensor=prepared.tensor[0], quality=float(prepared.quality[0]), minutiae=minutiae,
                             leader_source=source)

    def refine(self, minutiae: MinutiaeTemplate, source: LeaderSource) -> MinutiaeTemplate:
        if self._leader is None:
            return minutiae
        with torch.inference_mode():
            leader = window_minutiae(self._leader, source.gray, source.origin, minutiae.foreground, MASK_CELL_PX)
        return MinutiaeTemplate(minutiae.points, minutiae.foreground, leader)

    def embed(self, batch: list[PreparedImage]) -> list[Embedding]:
        with torch.inference_mode():
            images = torch.stack([p.tensor for p in batch])
            features = self._model.features(images)
            views = self._model.shifted_views_of(features, self._meta.probe_shift_radius).numpy()
            if not self._meta.dense_matching:
                return [Embedding(v, None) for v in views]
            grids = to_int8(dense_grid(features, images)[0]).numpy()
        return [Embedding(v, g, p.minutiae) for v, g, p in zip(views, grids, batch, strict=True)]

    def warm_up(self) -> float:
        """One forward pass at each common batch size, so the first request is not the slow one."""
        start = time.perf_counter()
        for n in (1, 4):
            self.embed([self.blank()] * n)
        return time.perf_counter() - start

    def blank(self) -> PreparedImage:
        """An empty print of this model's input size (what an undecodable image is scored as), with
        no minutiae when the model compares them, so it is scored like any other print."""
        size, outer = self._meta.window // 2, self._meta.minutiae_crop() // 2
        tensor = torch.zeros(2, size, size)
        minutiae = extract_minutiae(torch.zeros(outer, outer)) if self._meta.minutiae_weight > 0 else None
        if minutiae is not None and self._leader is not None:
            minutiae = MinutiaeTemplate(minutiae.points, minutiae.foreground, np.zeros((0, 3), np.float32))
        return PreparedImage(tensor=tensor, quality=0.0, minutiae=minutiae)


def time_extraction(embedder: Embedder) -> float:
    """Seconds to decode and prepare a plain 400 px print-sized image (every stage runs, LEADER included)."""
    import io

    from PIL import Image

    y, x = np.mgrid[0:400, 0:400]
    ridges = (127 + 100 * np.sin(x / 2.0 + y / 5.0)).astype(np.uint8)  # a foreground everywhere, as a print has
    buf = io.BytesIO()
    Image.fromarray(ridges).save(buf, format="PNG")
    started = time.perf_counter()
    try:
        embedder.preprocess(buf.getvalue(), 500.0)
    except ImageRejected:  # a fake or strict embedder may refuse it: then the first requests measure
        return 0.0
    return time.perf_counter() - started
