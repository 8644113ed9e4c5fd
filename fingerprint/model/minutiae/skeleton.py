"""One-pixel-wide ridge skeletons (Zhang-Suen thinning) and crossing numbers, as 3x3 lookups.

Each pixel's eight neighbours are packed into a byte from shifted copies of the image; a 256-entry table then says
whether the pixel may be deleted in each Zhang-Suen sub-iteration and what its crossing number is
(1: a ridge ends, 3: a ridge splits), so the whole image is processed in a few array operations. Thinning was
two thirds of minutiae extraction (~8 of ~12 ms per print) while every sub-iteration looked at every pixel;
`thin` now looks again only where something changed (numpy: flat gathers of a few pixels are cheap there).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

_MAX_ITERATIONS = 40
_DENSE_STEPS = 4
# (row, column) offsets in the padded image of the neighbours P2..P9 (N, NE, E, SE, S, SW, W, NW)
_NEIGHBOURS = ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first = np.zeros(256, dtype=bool)
    second = np.zeros(256, dtype=bool)
    crossing = np.zeros(256, dtype=np.uint8)
    for code in range(256):
        p = [(code >> k) & 1 for k in range(8)]
        transitions = sum(1 for k in range(8) if p[k] == 0 and p[(k + 1) % 8] == 1)
        n, _, e, _, s, _, w, _ = p
        if 2 <= sum(p) <= 6 and transitions == 1:
            first[code] = n * e * s == 0 and e * s * w == 0
            second[code] = n * e * w == 0 and n * s * w == 0
        crossing[code] = sum(abs(p[k] - p[(k + 1) % 8]) for k in range(8)) // 2
    return first, second, crossing


def neighbour_codes(binary: np.ndarray) -> np.ndarray:
    """(H, W) uint8 {0, 1} -> each pixel's neighbourhood byte: bit k is the neighbour P(k+2) of
    Zhang-Suen (N, NE, E, SE, S, SW, W, NW)."""
    h, w = binary.shape
    p = np.pad(binary, 1)
    code = p[0:h, 1 : w + 1].copy()
    for bit, (dy, dx) in enumerate(_NEIGHBOURS[1:], start=1):
        code |= p[dy : dy + h, dx : dx + w] << np.uint8(bit)
    return code


def thin(binary: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of (H, W) uint8 {0, 1} ridges to one-pixel-wide lines.

    The first _DENSE_STEPS sub-iterations look at every pixel (they delete nearly all that goes);
    after them only pixels next to one deleted in the last two sub-iterations are looked at again: a
    pixel's fate under a sub-iteration's table depends on its eight neighbours alone, so one whose
    neighbours have not changed since that table last kept it is kept again. The result is the
    whole-image algorithm's pixel for pixel; the tail, which on some prints removes one pixel of a
    staircase per sub-iteration for 30 of them, costs microseconds instead of half a millisecond each."""
    tables = _tables()[:2]
    h, w = binary.shape
    padded = np.pad((binary.numpy() > 0).astype(np.uint8), 1)
    inner = padded[1 : h + 1, 1 : w + 1]  # a view: deleting here deletes in `padded`
    flat = padded.reshape(-1)
    stride = w + 2
    offsets = np.array([dy * stride + dx for dy, dx in _NEIGHBOURS], np.int64) - (stride + 1)
    weights = (1 << np.arange(8)).astype(np.uint8)
    recent: list[np.ndarray] = []  # flat indices of the pixels deleted in the last two sub-iterations
    for step in range(2 * _MAX_ITERATIONS):
        table = tables[step % 2]
        if step < _DENSE_STEPS:
            keep = ~np.take(table, neighbour_codes(inner))
            if step < _DENSE_STEPS - 2:  # no sparse step looks back this far
                np.multiply(inner, keep, out=inner, casting="unsafe")
                continue
            at = np.flatnonzero(~keep & (inner > 0))
            deleted = at + (at // w) * 2 + stride + 1  # the inner image's flat index in the padded one
        else:
            if not any(len(r) for r in recent):
                break
            around = (np.concatenate(recent)[:, None] + offsets[None, :]).reshape(-1)
            candidates = np.unique(around[flat[around] > 0])
            codes = (flat[candidates[:, None] + offsets[None, :]] * weights).sum(1, dtype=np.uint8)
            deleted = candidates[table[codes]]
        flat[deleted] = 0
        recent = [*recent[-1:], deleted]
    return torch.from_numpy(np.ascontiguousarray(inner))


def crossing_numbers(skeleton: torch.Tensor) -> torch.Tensor:
    """(H, W) crossing number of every skeleton pixel (0 off the skeleton)."""
    _, _, crossing = _tables()
    image = (skeleton.numpy() > 0).astype(np.uint8)
    return torch.from_numpy(crossing[neighbour_codes(image)] * image).long()
