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
from dataclasses import dataclass

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


def dense_scores(
    fa: torch.Tensor, ma: torch.Tensor, fb: torch.Tensor, mb: torch.Tensor, max_shift: int = MAX_SHIFT
) -> torch.Tensor:
    """(A, B) similarities in about [-1, 1]: for each pair, the best over relative shifts of the
    summed cell cosines divided by (overlap + prior). Differentiable (through the best shift).

    Every shift's sum at once is a cross-correlation: the grids of the larger side are convolution
    kernels slid over the zero-padded grids of the smaller side (20x faster for one probe against
    64 candidates than the other way round; the shift range is symmetric, so the best is the same),
    and the masks likewise give each shift's overlap.
    """
    pad = (max_shift,) * 4
    if len(fa) < len(fb):
        num = F.conv2d(F.pad(fa, pad), fb)  # (A, B, 2s+1, 2s+1)
        overlap = F.conv2d(F.pad(ma[:, None], pad), mb[:, None])
        return (num / (overlap + _OVERLAP_PRIOR)).flatten(2).amax(2)
    num = F.conv2d(F.pad(fb, pad), fa)  # (B, A, 2s+1, 2s+1)
    overlap = F.conv2d(F.pad(mb[:, None], pad), ma[:, None])
    return (num / (overlap + _OVERLAP_PRIOR)).flatten(2).amax(2).T


def to_int8(cells: torch.Tensor) -> torch.Tensor:
    """Unit cell descriptors as int8 (x127): 6.4 KB per print. A 64-d unit vector has a component of
    at least 1/8, so a foreground cell never rounds to all zeros and the mask survives."""
    return torch.round(cells * 127).to(torch.int8)


def from_int8(cells: torch.Tensor) -> torch.Tensor:
    return cells.float() / 127


def cell_mask(cells: torch.Tensor) -> torch.Tensor:
    return (cells.abs().sum(1) > 0).float()


def rotate_cells(cells: torch.Tensor, mask: torch.Tensor, degrees: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid's cells moved as the print would move if turned by `degrees` about the grid centre
    (bilinear, renormalised); the descriptors themselves are not turned. Differentiable."""
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    sampling = F.affine_grid(theta[None].expand(len(cells), 2, 3), list(cells.shape), align_corners=False)
    moved_mask = (F.grid_sample(mask[:, None], sampling, align_corners=False) > 0.5).float()
    moved = F.normalize(F.grid_sample(cells, sampling, align_corners=False), dim=1) * moved_mask
    return moved, moved_mask[:, 0]


def rotation_scores(fa: torch.Tensor, ma: torch.Tensor, fb: torch.Tensor, mb: torch.Tensor,
                    max_shift: int = MAX_SHIFT, rotations: tuple[float, ...] = ()) -> torch.Tensor:
    """`dense_scores`, also trying `a`'s grid turned by each of `rotations` degrees: the best wins."""
    if not rotations:
        return dense_scores(fa, ma, fb, mb, max_shift)
    turned = [rotate_cells(fa, ma, degrees) for degrees in rotations]
    # every turn of `a` in one call: (R * A, B) scores, then the best turn per pair
    cells = torch.cat([fa, *(c for c, _ in turned)])
    masks = torch.cat([ma, *(m for _, m in turned)])
    return dense_scores(cells, masks, fb, mb, max_shift).view(len(rotations) + 1, len(fa), len(fb)).amax(0)


def grid_scores(probes: torch.Tensor, templates: torch.Tensor, max_shift: int = MAX_SHIFT,
                rotations: tuple[float, ...] = ()) -> torch.Tensor:
    """(P, G) `rotation_scores` between stored int8 grids (P, C, H, W) and (G, C, H, W); the mask is
    recovered from the zeroed cells, so a grid is all a template needs. Every scorer of stored or
    served grids (service, calibration, evaluation) goes through here."""
    p, t = from_int8(probes), from_int8(templates)
    return rotation_scores(p, cell_mask(p), t, cell_mask(t), max_shift, rotations)


def untilted_grid_scores(probe: torch.Tensor, templates: torch.Tensor, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """(G,) `grid_scores` of one stored int8 grid (1, C, H, W) against (G, C, H, W), untilted, for ranking:
    every shift's sum as one int8 product summed in int32 (exact, where float32's last bits depend on the
    product's shape), a few times faster than the float convolution; not the score verify returns."""
    pad = (max_shift,) * 4
    size = probe.shape[-2:]
    patches = F.unfold(F.pad(probe.float(), pad), size)[0].to(torch.int8)  # (C*H*W, shifts)
    num = torch._int_mm(templates.reshape(len(templates), -1), patches)
    probe_mask = (probe != 0).any(1, keepdim=True).float()
    mask_patches = F.unfold(F.pad(probe_mask, pad), size)[0].to(torch.int8)  # (H*W, shifts)
    overlap = torch._int_mm((templates != 0).any(1).reshape(len(templates), -1).to(torch.int8), mask_patches)
    return (num.float() / 127**2 / (overlap.float() + _OVERLAP_PRIOR)).amax(1)


@dataclass(frozen=True)
class GridMatcher:
    """A comparison as the model card defines it: the grid score over `max_shift` and `rotations`,
    with the search vector's best-view cosine added at `fusion_weight` and rescaled to about [-1, 1]
    (the vector sees the whole print's layout at once, the grid local agreement: their errors
    differ). The service, calibration and evaluation all compare through one of these."""

    max_shift: int = MAX_SHIFT
    rotations: tuple[float, ...] = ()
    fusion_weight: float = 0.0

    def scores(self, probes: torch.Tensor, templates: torch.Tensor, view_cosines: torch.Tensor) -> torch.Tensor:
        """(P, G) from int8 grids (P, C, H, W), (G, C, H, W) and the (P, G) best-view cosines."""
        return self._fused(grid_scores(probes, templates, self.max_shift, self.rotations), view_cosines)

    def ranking_scores(self, probe: torch.Tensor, templates: torch.Tensor, view_cosines: torch.Tensor) -> torch.Tensor:
        """(G,) `scores` of one int8 grid (1, C, H, W) against (G, C, H, W) untilted, in integer arithmetic
        (`untilted_grid_scores`): what ranks candidates before the full scores of the best."""
        return self._fused(untilted_grid_scores(probe, templates, self.max_shift), view_cosines)

    def _fused(self, grid: torch.Tensor, view_cosines: torch.Tensor) -> torch.Tensor:
        if self.fusion_weight == 0:
            return grid
        return (grid + self.fusion_weight * view_cosines) / (1 + self.fusion_weight)
