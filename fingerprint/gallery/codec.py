"""How an embedding is kept in a store row: float16 little-endian bytes (512 bytes at d=256)."""

from __future__ import annotations

import numpy as np


def encode_embedding(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype="<f2").tobytes()


def decode_embedding(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32)
