"""One-pixel-wide ridge skeletons (Zhang-Suen thinning) and crossing numbers, as 3x3 lookups.

Each pixel's eight neighbours are packed into a byte (bit k: neighbour P(k+2) of Zhang-Suen: N, NE, E, SE, S,
SW, W, NW), or for whole-image passes its 3x3 window into nine bits; a table then says
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
_BIT_WEIGHTS = (1 << np.arange(8)).astype(np.uint8)


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


@lru_cache(maxsize=1)
def _window_tables() -> tuple[np.ndarray, np.ndarray]:
    """The two sub-iterations' tables indexed by `window_codes` (the 3x3 window's nine bits) instead of
    the neighbourhood byte."""
    out = []
    for table in _tables()[:2]:
        by_window = np.zeros(512, dtype=bool)
        for window in range(512):
            code = sum(1 << bit for bit, (dy, dx) in enumerate(_NEIGHBOURS) if (window >> (3 * dy + dx)) & 1)
            by_window[window] = table[code]
        out.append(by_window)
    return out[0], out[1]


def window_codes(binary: np.ndarray) -> np.ndarray:
    """(H, W) uint8 {0, 1} -> each pixel's 3x3 window as nine bits (bit 3 row + column): each row's
    three pixels packed first, then three rows. Half the array passes of packing the eight neighbours
    one by one (0.3 vs 0.5 ms with the lookup on a 400 px window)."""
    h, w = binary.shape
    p = np.pad(binary, 1)
    rows = (p[:, 0:w] | (p[:, 1 : w + 1] << 1) | (p[:, 2 : w + 2] << 2)).astype(np.uint16)
    codes: np.ndarray = rows[0:h] | (rows[1 : h + 1] << 3) | (rows[2 : h + 2] << 6)
    return codes


def thin(binary: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of (H, W) uint8 {0, 1} ridges to one-pixel-wide lines.

    The first _DENSE_STEPS sub-iterations look at every pixel (they delete nearly all that goes);
    after them only pixels next to one deleted in the last two sub-iterations are looked at again: a
    pixel's fate under a sub-iteration's table depends on its eight neighbours alone, so one whose
    neighbours have not changed since that table last kept it is kept again. The result is the
    whole-image algorithm's pixel for pixel; the tail, which on some prints removes one pixel of a
    staircase per sub-iteration for 30 of them, costs microseconds instead of half a millisecond each."""
    tables, dense_tables = _tables()[:2], _window_tables()
    h, w = binary.shape
    padded = np.pad((binary.numpy() > 0).astype(np.uint8), 1)
    inner = padded[1 : h + 1, 1 : w + 1]  # a view: deleting here deletes in `padded`
    flat = padded.reshape(-1)
    stride = w + 2
    offsets = _flat_offsets(stride)
    recent: list[np.ndarray] = []  # flat indices of the pixels deleted in the last two sub-iterations
    claim = np.empty(flat.shape, np.int32)
    for step in range(2 * _MAX_ITERATIONS):
        table = tables[step % 2]
        if step < _DENSE_STEPS:
            keep = ~np.take(dense_tables[step % 2], window_codes(inner))
            if step < _DENSE_STEPS - 2:  # no sparse step looks back this far
                np.multiply(inner, keep, out=inner, casting="unsafe")
                continue
            at = np.flatnonzero(~keep & (inner > 0))
            deleted = at + (at // w) * 2 + stride + 1  # the inner image's flat index in the padded one
        else:
            if not any(len(r) for r in recent):
                break
            around = (np.concatenate(recent)[:, None] + offsets[None, :]).reshape(-1)
            around = around[flat[around] > 0]
            # each pixel once, in no particular order (a sub-iteration's deletions do not depend on it):
            # the last of its occurrences claims it in `claim`; a sort-based unique took twice as long
            order = np.arange(len(around), dtype=np.int32)
            claim[around] = order
            candidates = around[claim[around] == order]
            codes = _codes_at(flat, candidates, offsets)
            deleted = candidates[table[codes]]
        flat[deleted] = 0
        recent = [*recent[-1:], deleted]
    return torch.from_numpy(np.ascontiguousarray(inner))


def ridge_ends_and_forks(skeleton: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns (row-major order) and crossing numbers of the skeleton pixels of crossing number 1
    (a ridge ends) or 3 (a ridge splits). Only the skeleton's pixels are looked at (a tenth of the
    image; a whole-image pass was ~0.7 ms of a 400 px window's extraction)."""
    crossing = _tables()[2]
    w = skeleton.shape[1]
    flat = np.pad((skeleton.numpy() > 0).astype(np.uint8), 1).reshape(-1)
    stride = w + 2
    at = np.flatnonzero(flat)
    numbers = crossing[_codes_at(flat, at, _flat_offsets(stride))]
    pick = (numbers == 1) | (numbers == 3)
    at = at[pick]
    return at // stride - 1, at % stride - 1, numbers[pick]


def _flat_offsets(stride: int) -> np.ndarray:
    """Flat offsets of P2..P9 from a pixel of a padded image `stride` pixels wide."""
    return np.array([dy * stride + dx for dy, dx in _NEIGHBOURS], np.int64) - (stride + 1)


def _codes_at(flat: np.ndarray, at: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The neighbourhood bytes (bit k: neighbour P(k+2)) of the pixels at flat indices `at` of a padded image."""
    codes: np.ndarray = (flat[at[:, None] + offsets[None, :]] * _BIT_WEIGHTS).sum(1, dtype=np.uint8)
    return codes


_STEPS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


def branch_directions(padded: np.ndarray, ys: np.ndarray, xs: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Each skeleton point's branches followed for up to `length` pixels, all at once: a branch starts at each
    skeleton pixel next to the point and steps to the first skeleton neighbour (N to SE order) that is not
    next to the point and not one of its own last two pixels, stopping where there is none. `padded`: the
    bool skeleton with at least length + 1 background pixels around it, `ys`, `xs` in its coordinates.
    Returns the branches' unit vectors (x, y) from the point to where each stopped, (m, 2), and whose point
    each is, (m,) in ascending order (a point's branches are consecutive)."""
    sk = padded
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    owner, first = np.nonzero(sk[y0[:, None] + _STEPS[:, 0], x0[:, None] + _STEPS[:, 1]])
    oy, ox = y0[owner], x0[owner]
    y, x = oy + _STEPS[first, 0], ox + _STEPS[first, 1]
    back1y, back1x, back2y, back2x = oy, ox, oy, ox
    walking = np.ones(len(owner), bool)
    rows = np.arange(len(owner))
    for _ in range(length - 1):
        cy, cx = y[:, None] + _STEPS[:, 0], x[:, None] + _STEPS[:, 1]  # (m, 8) candidates
        ok = sk[cy, cx] & (np.maximum(np.abs(cy - oy[:, None]), np.abs(cx - ox[:, None])) > 1)
        ok &= ~((cy == back1y[:, None]) & (cx == back1x[:, None])) & ~((cy == back2y[:, None]) & (cx == back2x[:, None]))
        walking &= ok.any(1)
        pick = ok.argmax(1)
        back2y, back2x = np.where(walking, back1y, back2y), np.where(walking, back1x, back2x)
        back1y, back1x = np.where(walking, y, back1y), np.where(walking, x, back1x)
        y, x = np.where(walking, cy[rows, pick], y), np.where(walking, cx[rows, pick], x)
    v = np.stack([x - ox, y - oy], 1).astype(np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9), owner
