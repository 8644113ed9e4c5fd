"""The student: a small encoder-decoder that reads a 500 dpi print and, on a grid of 4 px cells, says
whether a minutia lies in each cell, where in it, its direction and whether it is an ending.

LEADER computes its maps at full resolution through two stacked U-Nets (~0.5 s a print on two cores);
minutiae are at least a ridge period (~9 px) apart, so one cell of 4 px rarely holds two, and an offset
keeps the position to a pixel. The student's outputs, per cell: minutia logit, x and y offset of the
nearest minutia (-1 to 2 cells: the cells around a minutia point at it too, so a peak found one cell off
still lands on it), cos and sin of its direction (image frame: x right, y down), ending logit.

The minutia logit learns LEADER's smoothed probability (the highest in the cell), not LEADER's suppressed
minutiae: uncertain places are taught as uncertain, and LEADER's own threshold (0.6) then applies.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CELL = 4  # px per output cell
MULTIPLE = 16  # input sides are padded to this (two more halvings below the cells)
OUTPUTS = 6


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


NORM_PX = 17  # about two ridge periods
THRESHOLD = 0.6  # LEADER's, on the probability the student learns


def _box_mean(x: torch.Tensor) -> torch.Tensor:
    # two 1-D averages (rows, then columns): the same as one 17 x 17 average at a ninth of its cost
    r = NORM_PX // 2
    x = F.avg_pool2d(x, (NORM_PX, 1), 1, (r, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, NORM_PX), 1, (0, r), count_include_pad=False)


def local_contrast(image: torch.Tensor) -> torch.Tensor:
    """Each pixel's grey level against its neighbourhood's mean and spread: sensors differ most in overall
    brightness and contrast, which this removes before the network sees them."""
    centred = image - _box_mean(image)
    return centred / (_box_mean(centred.square()).sqrt() + 8.0)


class StudentNet(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv(1, w // 2, 2), _conv(w // 2, w, 2))  # cells: 1/4
        self.enc1 = _conv(w, w)
        self.enc2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w), _conv(2 * w, 2 * w))  # 1/8
        self.enc3 = nn.Sequential(_conv(2 * w, 3 * w, 2), *(_conv(3 * w, 3 * w) for _ in range(3)))  # 1/16
        self.dec2 = _conv(5 * w, 2 * w)
        self.dec1 = _conv(3 * w, w)
        self.head = nn.Sequential(_conv(w, w), nn.Conv2d(w, OUTPUTS, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) grey levels 0-255, sides multiples of 16 -> (N, 6, H/4, W/4)."""
        x = local_contrast(image)
        c1 = self.enc1(self.stem(x))
        c2 = self.enc2(c1)
        c3 = self.enc3(c2)
        d2 = self.dec2(torch.cat([F.interpolate(c3, scale_factor=2.0, mode="nearest"), c2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), c1], 1))
        out: torch.Tensor = self.head(d1)
        return out


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


def _offset(out: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(out) * 3.0 - 1.0  # -1 to 2 cells


def loss(out: torch.Tensor, target: torch.Tensor, positive_weight: float = 4.0) -> dict[str, torch.Tensor]:
    prob, near = target[:, 0], target[:, 6]
    # the weight depends on the target alone, so the best prediction is still the target itself
    presence = F.binary_cross_entropy_with_logits(out[:, 0], prob, weight=1.0 + (positive_weight - 1.0) * prob)
    weight = near * (0.25 + prob)  # the cells the decoder will read count most
    n = weight.sum().clamp(min=1.0)
    offset = ((_offset(out[:, 1:3]) - target[:, 1:3]).abs().sum(1) * weight).sum() / n
    direction = F.normalize(out[:, 3:5], dim=1)
    angle = ((1.0 - (direction * target[:, 3:5]).sum(1)) * weight).sum() / n
    ending = (F.binary_cross_entropy_with_logits(out[:, 5], target[:, 5], reduction="none") * weight).sum() / n
    total = 4.0 * presence + offset + angle + 0.2 * ending
    return {"total": total, "presence": presence, "offset": offset, "angle": angle, "ending": ending}


def decode(out: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """(6, h, w) outputs of one print -> (n, 5) x, y, direction (pyfing's: counter-clockwise with y up, as
    `fingerprint.model.leader` reports LEADER's), ending, probability: the cells that pass `threshold`
    and are the most probable of their 3 x 3 cells."""
    logit = out[0]
    peak = logit >= F.max_pool2d(torch.from_numpy(logit)[None, None], 3, 1, 1)[0, 0].numpy()
    prob = 1.0 / (1.0 + np.exp(-logit))
    rows, cols = np.nonzero(peak & (prob >= threshold))
    offsets = _offset(torch.from_numpy(out[1:3, rows, cols])).numpy()
    x, y = (cols + offsets[0]) * CELL, (rows + offsets[1]) * CELL
    theta = np.arctan2(out[4, rows, cols], out[3, rows, cols])
    ending = out[5, rows, cols] >= 0
    return np.stack([x, y, np.remainder(-theta, 2 * math.pi), ending, prob[rows, cols]], 1).astype(np.float32)


def find(net: StudentNet, gray: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """The student's minutiae of a 500 dpi (H, W) uint8 image, as `fingerprint.model.leader.run(...).points`."""
    h, w = gray.shape
    ph, pw = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
    canvas = np.full((ph, pw), gray[0, 0], np.float32)
    canvas[:h, :w] = gray
    with torch.inference_mode():
        out = net(torch.from_numpy(canvas)[None, None])[0].numpy()
    found = decode(out, threshold)
    return found[(found[:, 0] < w) & (found[:, 1] < h)]
