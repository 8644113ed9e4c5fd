"""A print's minutiae as stored with its template: points, a coarse foreground mask and, for models
from 5.0, a second set of points found by LEADER (model/leader.py) on the same window.

Layout (little-endian): count (uint16), mask height and width (uint8 each), the mask's bits packed
row by row, then per minutia x, y (uint16 pixels at 500 dpi in the crop window) and its angle
(uint16, 2pi / 65536 steps); then, when there is a LEADER set, its count (uint16) and its points in
the same form. 80 + 80 minutiae and a 25x25 mask (a 400 px window) take 1,045 bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

_HEAD = struct.Struct("<HBB")
_COUNT = struct.Struct("<H")
_ANGLE_STEP = 2 * math.pi / 65536


class MinutiaeFormatError(ValueError):
    """Stored minutiae bytes that do not parse."""


def _points_bytes(points: np.ndarray) -> bytes:
    pts = np.empty((len(points), 3), dtype="<u2")
    pts[:, :2] = np.clip(np.round(points[:, :2]), 0, 65535)
    pts[:, 2] = np.round(np.remainder(points[:, 2], 2 * math.pi) / _ANGLE_STEP).astype(np.int64) % 65536
    return pts.tobytes()


def _points(data: bytes, offset: int, n: int) -> np.ndarray:
    raw = np.frombuffer(data, dtype="<u2", count=3 * n, offset=offset).reshape(n, 3).astype(np.float32)
    raw[:, 2] *= _ANGLE_STEP
    return raw


@dataclass(frozen=True)
class MinutiaeTemplate:
    points: np.ndarray  # (n, 3) float32: x, y, angle in radians
    foreground: np.ndarray  # (H, W) bool, one cell per MASK_CELL_PX block of the window
    leader: np.ndarray | None = None  # (m, 3) float32 as `points`: LEADER's minutiae of the same window

    @property
    def count(self) -> int:
        """The minutiae this print is compared by: LEADER's where the model finds them, else its own."""
        return len(self.points if self.leader is None else self.leader)

    def leader_template(self) -> MinutiaeTemplate | None:
        """LEADER's minutiae on this print's foreground, compared as any minutiae are."""
        return None if self.leader is None else MinutiaeTemplate(self.leader, self.foreground)

    def as_stored(self) -> MinutiaeTemplate:
        """The template as the gallery stores it and reads it back: positions on whole pixels."""
        return MinutiaeTemplate.from_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        h, w = self.foreground.shape
        out = _HEAD.pack(len(self.points), h, w) + np.packbits(self.foreground.ravel()).tobytes() + _points_bytes(self.points)
        if self.leader is not None:
            out += _COUNT.pack(len(self.leader)) + _points_bytes(self.leader)
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> MinutiaeTemplate:
        if len(data) < _HEAD.size:
            raise MinutiaeFormatError("truncated minutiae header")
        n, h, w = _HEAD.unpack_from(data)
        mask_bytes = (h * w + 7) // 8
        own_end = _HEAD.size + mask_bytes + 6 * n
        leader: np.ndarray | None = None
        if len(data) >= own_end + _COUNT.size:
            (m,) = _COUNT.unpack_from(data, own_end)
            if len(data) != own_end + _COUNT.size + 6 * m:
                raise MinutiaeFormatError("LEADER minutiae length does not match its count")
            leader = _points(data, own_end + _COUNT.size, m)
        elif len(data) != own_end:
            raise MinutiaeFormatError("minutiae length does not match its header")
        bits = np.frombuffer(data, dtype=np.uint8, count=mask_bytes, offset=_HEAD.size)
        mask = np.unpackbits(bits)[: h * w].reshape(h, w).astype(bool)
        return cls(_points(data, _HEAD.size + mask_bytes, n), mask, leader)
