"""The student's training targets and loss: what LEADER (`fingerprint.model.leader`) says about each cell
of a print, as `fingerprint.model.student.StudentNet` outputs it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.model.student import CELL, OUTPUTS, offset_cells


def cell_probability(smooth: np.ndarray) -> np.ndarray:
    """(H, W) LEADER's smoothed probability, 0-255 -> (H/4, W/4) the highest in each cell, 0-1."""
    t = torch.from_numpy(smooth.astype(np.float32) / 255.0)[None, None]
    return F.max_pool2d(t, CELL, CELL)[0, 0].numpy()


def targets(minutiae: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, direction, ending and (H, W) smoothed probability -> (7, H/4, W/4): probability,
    x/y offsets, cos, sin, ending, and where those four apply (the 3 x 3 cells around each minutia; a
    minutia's own cell wins over a neighbour's)."""
    presence = cell_probability(smooth)
    cells_h, cells_w = presence.shape
    t = np.zeros((OUTPUTS + 1, cells_h, cells_w), np.float32)
    t[0] = presence
    if len(minutiae) == 0:
        return t
    col0, row0 = (minutiae[:, 0] // CELL).astype(int), (minutiae[:, 1] // CELL).astype(int)
    for dy, dx in sorted(((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)), key=lambda d: -abs(d[0]) - abs(d[1])):
        row, col = row0 + dy, col0 + dx
        ok = (row >= 0) & (row < cells_h) & (col >= 0) & (col < cells_w)
        m, r, c = minutiae[ok], row[ok], col[ok]
        t[1, r, c] = m[:, 0] / CELL - c
        t[2, r, c] = m[:, 1] / CELL - r
        t[3, r, c] = np.cos(m[:, 2])
        t[4, r, c] = np.sin(m[:, 2])
        t[5, r, c] = m[:, 3]
        t[6, r, c] = 1.0
    return t


def loss(out: torch.Tensor, target: torch.Tensor, positive_weight: float = 4.0) -> dict[str, torch.Tensor]:
    prob, near = target[:, 0], target[:, 6]
    # the weight depends on the target alone, so the best prediction is still the target itself
    presence = F.binary_cross_entropy_with_logits(out[:, 0], prob, weight=1.0 + (positive_weight - 1.0) * prob)
    weight = near * (0.25 + prob)  # the cells the decoder will read count most
    n = weight.sum().clamp(min=1.0)
    offset = ((offset_cells(out[:, 1:3]) - target[:, 1:3]).abs().sum(1) * weight).sum() / n
    direction = F.normalize(out[:, 3:5], dim=1)
    angle = ((1.0 - (direction * target[:, 3:5]).sum(1)) * weight).sum() / n
    ending = (F.binary_cross_entropy_with_logits(out[:, 5], target[:, 5], reduction="none") * weight).sum() / n
    total = 4.0 * presence + offset + angle + 0.2 * ending
    return {"total": total, "presence": presence, "offset": offset, "angle": angle, "ending": ending}
