"""Dense matching: the network's grid of local ridge descriptors compared under relative shifts.

The embedding fixes where each pattern must sit, so two impressions placed differently on the
sensor (common on small optical sensors) score low even when their ridges agree. Comparing the
10x10 descriptor grids cell by cell over the best of several relative shifts, normalised by the
overlapping foreground, is alignment for the price of a few matrix products. It is too costly to
scan a million templates with, so the service uses it to verify and to re-rank identify's shortlist;
training, calibration, evaluation and the service all score through `dense_scores`.
"""

from __future__ import annotations

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


def grid_scores(probes: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """(P, G) scores between stored int8 grids (P, C, H, W) and (G, C, H, W): the mask is recovered
    from the zeroed cells, so a stored grid is all a template needs. Every scorer that compares
    stored or served grids (service, calibration, evaluation) goes through here."""
    p, t = from_int8(probes), from_int8(templates)
    return dense_scores(p, cell_mask(p), t, cell_mask(t))
