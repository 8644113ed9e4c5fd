"""Minutia Cylinder-Code (Cappelli, Ferrara and Maltoni, IEEE TPAMI 2010).

Each minutia gets a cylinder: a 16x16 grid of cells turned with the minutia's direction, 6 layers of
relative direction deep, that records which neighbours lie where and point which way. It is invariant
to the print's translation and rotation by construction and tolerant to distortion through its
Gaussian contributions. Parameters are the paper's for 500 dpi. Cells outside the print are invalid,
so a cylinder near the edge of a partial print only asks about the part it can see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

RADIUS = 70.0  # px at 500 dpi
CELLS = 16  # per side
LAYERS = 6  # of relative direction
SIGMA_S = 28.0 / 3
SIGMA_D = 2 * math.pi / 9
MU_PSI, TAU_PSI = 0.01, 400.0  # the sigmoid that saturates a cell's summed contributions
# of a cylinder's disc on the print, or the cylinder is not used; the paper's 0.75 drops too many
# minutiae of partial prints (held-out split and its placed copy, model card "Minutiae")
MIN_VALID_SHARE = 0.5
MIN_NEIGHBOURS = 2
_CELL = 2 * RADIUS / CELLS
_NEGLIGIBLE = 1e-9  # a contribution this small cannot move a cell across the sigmoid's 0.01
_MIN_EXPONENT = math.log(_NEGLIGIBLE)
_LAYER = 2 * math.pi / LAYERS
_FAR = 1e4  # px: where a minutia is put in its own frame so that it contributes nothing


@dataclass(frozen=True)
class Cylinders:
    minutiae: np.ndarray  # (n, 3) x, y, angle
    values: np.ndarray  # (n, CELLS*CELLS*LAYERS) float32, zero on invalid cells
    valid_cells: np.ndarray  # (n, CELLS*CELLS) float32 {0, 1}
    energy: np.ndarray  # (n, CELLS*CELLS) float32: each cell's squared values summed over its layers
    usable: np.ndarray  # (n,) bool


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def build(minutiae: np.ndarray, foreground: np.ndarray, mask_cell_px: float) -> Cylinders:
    """Cylinders of (n, 3) minutiae on a print whose foreground is the (H, W) bool mask of
    `mask_cell_px`-pixel blocks."""
    n = len(minutiae)
    size = CELLS * CELLS
    if n == 0:
        empty = np.zeros((0, size), np.float32)
        return Cylinders(minutiae, np.zeros((0, size * LAYERS), np.float32), empty, empty, np.zeros(0, bool))
    m = torch.from_numpy(minutiae.astype(np.float32))
    x, y, a = m[:, 0], m[:, 1], m[:, 2]
    centres, layers, oi, oj, in_disc = _frame()
    c, s = torch.cos(a), torch.sin(a)
    # every neighbour in each minutia's own frame; a cell centre there is (centres[i], centres[j])
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    along = c[:, None] * dx + s[:, None] * dy  # (n, n)
    across = -s[:, None] * dx + c[:, None] * dy
    # a minutia is not its own neighbour: placed far beyond every cell, its Gaussian is exactly 0
    along.fill_diagonal_(_FAR)
    # the Gaussian of the distance to a cell centre factorises over the frame's two axes
    norm = 1.0 / (SIGMA_S * math.sqrt(2 * math.pi))
    g_i = _gaussian(centres[None, :, None] - along[:, None, :]) * norm  # (n, I, t)
    g_j = _gaussian(centres[None, :, None] - across[:, None, :])  # (n, J, t)
    relative = _wrap(a[None, :] - a[:, None])  # (n, t): neighbour's direction relative to the minutia's
    gap = _wrap(layers[None, :, None] - relative[:, None, :])  # (n, L, t)
    k = SIGMA_D * math.sqrt(2)
    directional = 0.5 * (torch.erf((gap + _LAYER / 2) / k) - torch.erf((gap - _LAYER / 2) / k))
    directional = directional.masked_fill(directional < _NEGLIGIBLE, 0.0)
    # the (n, I, L, t) product is laid out so that no copy of it is needed before the batched product
    # (permuting the (n, t, J, L) one cost a quarter of the build); only the small result is transposed
    i_by_layer = (g_i[:, :, None, :] * directional[:, None, :, :]).reshape(n, CELLS * LAYERS, n)
    summed = torch.bmm(i_by_layer, g_j.transpose(1, 2)).reshape(n, CELLS, LAYERS, CELLS)
    summed = summed.transpose(2, 3).reshape(n, CELLS * CELLS, LAYERS)  # cell (i, j) at i * CELLS + j
    px = x[:, None] + c[:, None] * oi[None, :] - s[:, None] * oj[None, :]  # (n, C) cell centres in the image
    py = y[:, None] + s[:, None] * oi[None, :] + c[:, None] * oj[None, :]
    valid = in_disc & _on_print(px, py, torch.from_numpy(foreground), mask_cell_px)
    values = torch.sigmoid(TAU_PSI * (summed - MU_PSI)) * valid[:, :, None]
    near = torch.hypot(dx, dy) <= RADIUS + 3 * SIGMA_S
    usable = (valid.sum(1) >= MIN_VALID_SHARE * in_disc.sum()) & (near.sum(1) - 1 >= MIN_NEIGHBOURS)
    return Cylinders(minutiae, values.reshape(n, -1).numpy(), valid.float().numpy(),
                     (values**2).sum(2).numpy(), usable.numpy())


@lru_cache(maxsize=1)
def _frame() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What every build shares (never written to): the cell centres along one axis, the direction layers'
    centres, each cell's (along, across) centre flattened, and which cells lie in the disc."""
    centres = (torch.arange(CELLS, dtype=torch.float32) - (CELLS - 1) / 2) * _CELL
    layers = -math.pi + (torch.arange(LAYERS, dtype=torch.float32) + 0.5) * _LAYER
    gi, gj = torch.meshgrid(centres, centres, indexing="ij")
    oi, oj = gi.reshape(-1), gj.reshape(-1)
    return centres, layers, oi, oj, (torch.hypot(oi, oj) <= RADIUS)[None, :]


def _gaussian(offset: torch.Tensor) -> torch.Tensor:
    """exp(-offset^2 / 2 sigma_S^2), exactly 0 where below _NEGLIGIBLE: far neighbours would otherwise
    give denormal floats, which made this function and the products after it ~20x slower."""
    exponent = -(offset**2) / (2 * SIGMA_S**2)
    return torch.exp(exponent.clamp(min=_MIN_EXPONENT)).masked_fill(exponent < _MIN_EXPONENT, 0.0)


def _on_print(px: torch.Tensor, py: torch.Tensor, fg: torch.Tensor, cell: float) -> torch.Tensor:
    h, w = fg.shape
    col = torch.floor(px / cell).long()
    row = torch.floor(py / cell).long()
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    return inside & fg[row.clamp(0, h - 1), col.clamp(0, w - 1)]
