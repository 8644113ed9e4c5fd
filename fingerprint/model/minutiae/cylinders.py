"""Minutia Cylinder-Code (Cappelli, Ferrara and Maltoni, IEEE TPAMI 2010).

Each minutia gets a cylinder: a 16x16 grid of cells turned with the minutia's direction, 6 layers of
relative direction deep, that records which neighbours lie where and point which way. It is invariant
to the print's translation and rotation by construction and tolerant to distortion through its
Gaussian contributions. Parameters are the paper's for 500 dpi. Cells outside the print are invalid,
so a cylinder near the edge of a partial print only asks about the part it can see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
_FLOOR = float(torch.tensor(_MIN_EXPONENT).exp())  # exp of the clamped exponent, as torch rounds it
_LAYER = 2 * math.pi / LAYERS
_FAR = 1e4  # px: where a minutia is put in its own frame (and padding anywhere) so that it contributes nothing
# a neighbour farther than this from a minutia is more than SIGMA_S * sqrt(-2 ln _NEGLIGIBLE) px from every
# cell centre of its disc: what it adds to any of them is below _NEGLIGIBLE (values move < 1e-6)
_REACH = RADIUS + SIGMA_S * math.sqrt(-2 * math.log(_NEGLIGIBLE)) + 1.0
_BATCH = 16  # prints built together: more costs more in memory traffic than it saves (64 at once: 5x slower)


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
    return build_many([(minutiae, foreground)], mask_cell_px)[0]


def build_many(prints: Sequence[tuple[np.ndarray, np.ndarray]], mask_cell_px: float) -> list[Cylinders]:
    """`build` of each (minutiae, foreground), the same values, several prints to each tensor operation:
    a build is some forty small operations whose fixed cost is most of it, and identify builds the
    cylinders of each of its shortlist's candidates (64 of them: 136 -> 108 ms on one core)."""
    out: list[Cylinders | None] = [None] * len(prints)
    order = sorted(range(len(prints)), key=lambda k: len(prints[k][0]))  # similar counts pad least
    for start in range(0, len(order), _BATCH):
        chunk = order[start : start + _BATCH]
        for k, cylinders in zip(chunk, _build_batch([prints[k] for k in chunk], mask_cell_px), strict=True):
            out[k] = cylinders
    return [c for c in out if c is not None]


def _build_batch(prints: list[tuple[np.ndarray, np.ndarray]], mask_cell_px: float) -> list[Cylinders]:
    size = CELLS * CELLS
    b, n = len(prints), max(len(m) for m, _ in prints)
    if n == 0:
        empty = np.zeros((0, size), np.float32)
        return [Cylinders(m, np.zeros((0, size * LAYERS), np.float32), empty, empty, np.zeros(0, bool)) for m, _ in prints]
    # a print with fewer minutiae is padded with points far beyond every cell (each of their Gaussians is
    # exactly 0, so they add nothing to a real minutia's cells) and its foreground with background
    m = torch.full((b, n, 3), _FAR, dtype=torch.float32)
    h, w = max(f.shape[0] for _, f in prints), max(f.shape[1] for _, f in prints)
    fg = torch.zeros((b, h, w), dtype=torch.bool)
    for k, (points, foreground) in enumerate(prints):
        m[k, : len(points)] = torch.from_numpy(points.astype(np.float32))
        fg[k, : foreground.shape[0], : foreground.shape[1]] = torch.from_numpy(foreground)
    x, y, a = m[..., 0], m[..., 1], m[..., 2]
    centres, layers, oi, oj, in_disc = _frame()
    c, s = torch.cos(a), torch.sin(a)
    dx = x[:, None, :] - x[:, :, None]  # (b, n, n)
    dy = y[:, None, :] - y[:, :, None]
    distance = torch.hypot(dx, dy)
    distance.diagonal(dim1=1, dim2=2).fill_(math.inf)  # a minutia is not its own neighbour
    # only the neighbours that can reach a cell of the disc: a farther one's Gaussians are exactly 0 there
    real = torch.arange(n) < torch.tensor([len(points) for points, _ in prints])[:, None]  # (b, n): not padding
    t = max(1, int(((distance <= _REACH).sum(-1) * real).max()))
    nearest = distance.topk(t, dim=-1, largest=False).indices  # (b, n, t)
    dx, dy, a_t = dx.gather(2, nearest), dy.gather(2, nearest), a[:, None, :].expand(b, n, n).gather(2, nearest)
    # every neighbour in each minutia's own frame; a cell centre there is (centres[i], centres[j])
    along = c[..., None] * dx + s[..., None] * dy
    across = -s[..., None] * dx + c[..., None] * dy
    # beyond reach (itself included) it adds exactly 0, so a print's cylinders do not depend on its batch
    reach = distance.gather(2, nearest)
    along = along.masked_fill((reach > _REACH) | (reach == math.inf), _FAR)
    # the Gaussian of the distance to a cell centre factorises over the frame's two axes
    norm = 1.0 / (SIGMA_S * math.sqrt(2 * math.pi))
    g_i = _gaussian(centres[:, None] - along[:, :, None, :]) * norm  # (b, n, I, t)
    g_j = _gaussian(centres[:, None] - across[:, :, None, :])  # (b, n, J, t)
    relative = _wrap(a_t - a[:, :, None])  # (b, n, t): neighbour's direction relative to the minutia's
    gap = _wrap(layers[:, None] - relative[:, :, None, :])  # (b, n, L, t)
    spread = SIGMA_D * math.sqrt(2)
    directional = 0.5 * (torch.erf((gap + _LAYER / 2) / spread) - torch.erf((gap - _LAYER / 2) / spread))
    directional.masked_fill_(directional < _NEGLIGIBLE, 0.0)
    # each neighbour's (J, L) contributions side by side, so that the batched product with the (I, t) Gaussians
    # gives every cylinder's cells already in their (i, j, layer) order (a transposed copy of the result
    # cost a tenth of the build)
    j_by_layer = g_j.transpose(2, 3)[..., None] * directional.transpose(2, 3)[..., None, :]  # (b, n, t, J, L)
    summed = torch.bmm(g_i.reshape(b * n, CELLS, t), j_by_layer.reshape(b * n, t, CELLS * LAYERS))
    summed = summed.reshape(b, n, size, LAYERS)  # cell (i, j) at i * CELLS + j
    px = x[..., None] + c[..., None] * oi - s[..., None] * oj  # (b, n, C) cell centres in the image
    py = y[..., None] + s[..., None] * oi + c[..., None] * oj
    valid = in_disc & _on_print(px, py, fg, mask_cell_px)
    values = summed.sub_(MU_PSI).mul_(TAU_PSI).sigmoid_().mul_(valid[..., None])  # in place: 5 M cells for 64 prints
    near = distance <= RADIUS + 3 * SIGMA_S
    usable = (valid.sum(-1) >= MIN_VALID_SHARE * in_disc.sum()) & (near.sum(-1) >= MIN_NEIGHBOURS)
    values_, valid_, energy, usable_ = (values.reshape(b, n, -1).numpy(), valid.float().numpy(),
                                        _layer_sums(values * values).numpy(), usable.numpy())
    return [Cylinders(points, values_[k, : len(points)], valid_[k, : len(points)], energy[k, : len(points)],
                      usable_[k, : len(points)]) for k, (points, _) in enumerate(prints)]


@lru_cache(maxsize=1)
def _frame() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What every build shares (never written to): the cell centres along one axis, the direction layers'
    centres, each cell's (along, across) centre flattened, and which cells lie in the disc."""
    centres = (torch.arange(CELLS, dtype=torch.float32) - (CELLS - 1) / 2) * _CELL
    layers = -math.pi + (torch.arange(LAYERS, dtype=torch.float32) + 0.5) * _LAYER
    gi, gj = torch.meshgrid(centres, centres, indexing="ij")
    oi, oj = gi.reshape(-1), gj.reshape(-1)
    return centres, layers, oi, oj, (torch.hypot(oi, oj) <= RADIUS)[None, :]


def _layer_sums(x: torch.Tensor) -> torch.Tensor:
    """(..., LAYERS) summed over the layers, as a product with ones: a sum along a last axis of 6 ran ~3x slower."""
    return (x.reshape(-1, LAYERS) @ torch.ones(LAYERS, 1)).reshape(x.shape[:-1])


def _gaussian(offset: torch.Tensor) -> torch.Tensor:
    """exp(-offset^2 / 2 sigma_S^2), exactly 0 where below _NEGLIGIBLE: far neighbours would otherwise
    give denormal floats, which made this function and the products after it ~20x slower."""
    exponent = offset.square_().mul_(-0.5 / SIGMA_S**2)  # offset is each caller's own temporary
    # clamped, the smallest is exp(_MIN_EXPONENT) itself, which the threshold then sets to 0
    return torch.threshold_(exponent.clamp_(min=_MIN_EXPONENT).exp_(), _FLOOR, 0.0)


def _on_print(px: torch.Tensor, py: torch.Tensor, fg: torch.Tensor, cell: float) -> torch.Tensor:
    """Whether each (b, ...) point lies on its print's foreground, fg (b, H, W)."""
    b, h, w = fg.shape
    col = torch.floor(px / cell).long()
    row = torch.floor(py / cell).long()
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    # one flat index into every print's cells (a gather by three index tensors cost twice as much)
    at = row.clamp_(0, h - 1).mul_(w).add_(col.clamp_(0, w - 1))
    at += (torch.arange(b) * (h * w)).reshape(-1, *([1] * (px.dim() - 1)))
    return inside & fg.reshape(-1).take(at)
