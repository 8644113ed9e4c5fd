"""The interface the service's batcher calls: preprocess one image, embed a batch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from fingerprint.model.decode import decode_grayscale, to_target_dpi
from fingerprint.model.preprocess import INPUT_SIZE, prepare
from fingerprint.model.weights import ModelMeta, load_weights


@dataclass(frozen=True)
class PreparedImage:
    tensor: torch.Tensor  # (2, INPUT_SIZE, INPUT_SIZE), see preprocess.Prepared
    quality: float


class Embedder(Protocol):
    @property
    def meta(self) -> ModelMeta: ...

    def preprocess(self, data: bytes, dpi: float) -> PreparedImage:
        """Decode and prepare; raises ImageRejected for unusable input."""
        ...

    def embed(self, batch: list[PreparedImage]) -> np.ndarray:
        """(len(batch), views, embedding_dim) float32 unit vectors. View 0 is the template (the print
        as centred); the others are the same print shifted (`ModelMeta.probe_shift_radius`), used
        when it is the probe of a comparison."""
        ...


class TorchEmbedder:
    def __init__(self, weights: Path, max_pixels: int, threads: int = 0) -> None:
        if threads > 0:  # torch's intra-op pool is process-wide; 0 keeps its default of one per core
            torch.set_num_threads(threads)
        self._model, self._meta = load_weights(weights)
        self._max_pixels = max_pixels

    @property
    def meta(self) -> ModelMeta:
        return self._meta

    def preprocess(self, data: bytes, dpi: float) -> PreparedImage:
        gray = to_target_dpi(decode_grayscale(data, self._max_pixels), dpi)
        with torch.inference_mode():
            prepared = prepare(torch.from_numpy(gray.astype(np.float32))[None, None])
        return PreparedImage(tensor=prepared.tensor[0], quality=float(prepared.quality[0]))

    def embed(self, batch: list[PreparedImage]) -> np.ndarray:
        with torch.inference_mode():
            out = self._model.shifted_views(torch.stack([p.tensor for p in batch]), self._meta.probe_shift_radius)
        result: np.ndarray = out.numpy().astype(np.float32)
        return result

    def warm_up(self) -> float:
        """One forward pass at each common batch size, so the first request is not the slow one."""
        start = time.perf_counter()
        blank = PreparedImage(tensor=torch.zeros(2, INPUT_SIZE, INPUT_SIZE), quality=0.0)
        for n in (1, 4):
            self.embed([blank] * n)
        return time.perf_counter() - start
