"""Dense matching: the network's grid of local ridge descriptors compared under relative shifts.

The embedding fixes where each pattern must sit, so two impressions placed differently on the
sensor (common on small optical sensors) score low even when their ridges agree. Comparing the
10x10 descriptor grids cell by cell over the best of several relative shifts, normalised by the
overlapping foreground, is alignment for the price of a few matrix products. It is too costly to
scan a million templates with, so the service uses it to verify and to re-rank identify's shortlist;
training, calibration, evaluation and the service all score through `dense_scores`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

MAX_SHIFT = 3  # cells (1.6 mm each) in each direction: 7x7 relative positions
_OVERLAP_PRIOR = 8.0  # cells added to the overlap so that a few agreeing cells cannot score high
_FOREGROUND_SHARE = 0.6  # a cell counts when this share of its pixels is foreground


def dense_grid(features: torch.Tensor, prepared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) features of (B, 2, S, S) prepared images -> unit cell descriptors zeroed off the
    print, and the (B, H, W) foreground cell mask."""
    fg = F.adaptive_avg_pool2d((prepared[:, :1].abs() > 0).float(), features.shape[-1]) > _FOREGROUND_SHARE
    cells = F.normalize(features - features.mean(1, keepdim=True), dim=1) * fg
    return cells, fg[:, 0].float()


def _windows(size: int, d: int) -> tuple[slice, slice]:
    return slice(max(0, d), size + min(0, d)), slice(max(0, -d), size + min(0, -d))


def dense_scores(
    fa: torch.Tensor, ma: torch.Tensor, fb: torch.Tensor, mb: torch.Tensor, max_shift: int = MAX_SHIFT
) -> torch.Tensor:
    """(A, B) similarities in about [-1, 1]: for each pair, the best over relative shifts of the
    summed cell cosines divided by (overlap + prior). Differentiable (through the best shift)."""
    h, w = fa.shape[-2:]
    best = torch.full((len(fa), len(fb)), -math.inf, dtype=fa.dtype)
    for dy in range(-max_shift, max_shift + 1):
        ya, yb = _windows(h, dy)
        for dx in range(-max_shift, max_shift + 1):
            xa, xb = _windows(w, dx)
            num = torch.einsum("ichw,jchw->ij", fa[:, :, ya, xa], fb[:, :, yb, xb])
            overlap = torch.einsum("ihw,jhw->ij", ma[:, ya, xa], mb[:, yb, xb])
            best = torch.maximum(best, num / (overlap + _OVERLAP_PRIOR))
    return best


def to_int8(cells: torch.Tensor) -> torch.Tensor:
    """Unit cell descriptors as int8 (x127): 6.4 KB per print. A 64-d unit vector has a component of
    at least 1/8, so a foreground cell never rounds to all zeros and the mask survives."""
    return torch.round(cells * 127).to(torch.int8)


def from_int8(cells: torch.Tensor) -> torch.Tensor:
    return cells.float() / 127


def cell_mask(cells: torch.Tensor) -> torch.Tensor:
    return (cells.abs().sum(1) > 0).float()


@functools.lru_cache(maxsize=8)
def _shift_pairs(h: int, w: int, max_shift: int) -> torch.Tensor:
    """(H*W*H*W, S) 0/1 matrix: which (cell of a, cell of b) products each relative shift sums,
    the same pairing as `dense_scores` (a's cell (y, x) meets b's cell (y - dy, x - dx))."""
    n = h * w
    shifts = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]
    pairs = torch.zeros(n * n, len(shifts))
    for s, (dy, dx) in enumerate(shifts):
        for y in range(max(0, dy), h + min(0, dy)):
            for x in range(max(0, dx), w + min(0, dx)):
                pairs[(y * w + x) * n + (y - dy) * w + (x - dx), s] = 1.0
    return pairs


def grid_scores(probes: torch.Tensor, templates: torch.Tensor, max_shift: int = MAX_SHIFT,
                chunk: int = 256) -> torch.Tensor:
    """(P, G) scores between stored int8 grids (P, C, H, W) and (G, C, H, W), equal to
    `dense_scores`; the mask is recovered from the zeroed cells, so a grid is all a template needs.
    Every scorer of stored or served grids (service, calibration, evaluation) goes through here.

    One matrix product gives every cell-to-cell cosine of a pair; a second sums them along each
    shift's diagonal. That is a few large products instead of 49 small strided ones (10x faster).
    """
    p, t = from_int8(probes), from_int8(templates)
    h, w = p.shape[-2:]
    pairs = _shift_pairs(h, w, max_shift)
    pc, tc = p.flatten(2), t.flatten(2)  # (P, C, HW)
    pm, tm = cell_mask(p).flatten(1), cell_mask(t).flatten(1)  # (P, HW)
    out = torch.empty(len(p), len(t))
    for i in range(len(p)):
        for start in range(0, len(t), chunk):
            block = tc[start : start + chunk]
            cos = torch.matmul(pc[i].T, block).flatten(1)  # (g, HW*HW): every cell of i against every cell of g
            overlap = (pm[i][:, None] * tm[start : start + chunk, None, :]).flatten(1)
            ratio = (cos @ pairs) / (overlap @ pairs + _OVERLAP_PRIOR)
            out[i, start : start + chunk] = ratio.max(dim=1).values
    return out
