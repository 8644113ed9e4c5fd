"""A print's minutiae as stored with its template: points and a coarse foreground mask.

Layout (little-endian): count (uint16), mask height and width (uint8 each), the mask's bits packed
row by row, then per minutia x, y (uint16 pixels at 500 dpi in the crop window) and its angle
(uint16, 2pi / 65536 steps). 80 minutiae and a 25x25 mask (a 400 px window) take 563 bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

_HEAD = struct.Struct("<HBB")
_ANGLE_STEP = 2 * math.pi / 65536


class MinutiaeFormatError(ValueError):
    """Stored minutiae bytes that do not parse."""


@dataclass(frozen=True)
class MinutiaeTemplate:
    points: np.ndarray  # (n, 3) float32: x, y, angle in radians
    foreground: np.ndarray  # (H, W) bool, one cell per MASK_CELL_PX block of the window

    def to_bytes(self) -> bytes:
        h, w = self.foreground.shape
        pts = np.empty((len(self.points), 3), dtype="<u2")
        pts[:, :2] = np.clip(np.round(self.points[:, :2]), 0, 65535)
        pts[:, 2] = np.round(np.remainder(self.points[:, 2], 2 * math.pi) / _ANGLE_STEP).astype(np.int64) % 65536
        return _HEAD.pack(len(self.points), h, w) + np.packbits(self.foreground.ravel()).tobytes() + pts.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> MinutiaeTemplate:
        if len(data) < _HEAD.size:
            raise MinutiaeFormatError("truncated minutiae header")
        n, h, w = _HEAD.unpack_from(data)
        mask_bytes = (h * w + 7) // 8
        if len(data) != _HEAD.size + mask_bytes + 6 * n:
            raise MinutiaeFormatError("minutiae length does not match its header")
        bits = np.frombuffer(data, dtype=np.uint8, count=mask_bytes, offset=_HEAD.size)
        mask = np.unpackbits(bits)[: h * w].reshape(h, w).astype(bool)
        raw = np.frombuffer(data, dtype="<u2", offset=_HEAD.size + mask_bytes).reshape(n, 3).astype(np.float32)
        raw[:, 2] *= _ANGLE_STEP
        return cls(raw, mask)
