"""The student: a small encoder-decoder that reads a 500 dpi print and, on a grid of 4 px cells, says
whether a minutia lies in each cell, where in it, its direction and whether it is an ending.

LEADER computes its maps at full resolution through two stacked U-Nets (~0.5 s a print on two cores);
minutiae are at least a ridge period (~9 px) apart, so one cell of 4 px rarely holds two, and an offset
inside the cell keeps the position to a pixel. The student's outputs, per cell: minutia logit, x and y
offset (0-1 of the cell), cos and sin of the direction (image frame: x right, y down), ending logit.
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


def local_contrast(image: torch.Tensor) -> torch.Tensor:
    """Each pixel's grey level against its neighbourhood's mean and spread: sensors differ most in overall
    brightness and contrast, which this removes before the network sees them."""
    mean = F.avg_pool2d(image, NORM_PX, 1, NORM_PX // 2, count_include_pad=False)
    centred = image - mean
    spread = F.avg_pool2d(centred.square(), NORM_PX, 1, NORM_PX // 2, count_include_pad=False)
    return centred / (spread.sqrt() + 8.0)


class StudentNet(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv(1, w // 2, 2), _conv(w // 2, w, 2))  # cells: 1/4
        self.enc1 = _conv(w, w)
        self.enc2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))  # 1/8
        self.enc3 = nn.Sequential(_conv(2 * w, 3 * w, 2), _conv(3 * w, 3 * w), _conv(3 * w, 3 * w))  # 1/16
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


def targets(minutiae: np.ndarray, cells_h: int, cells_w: int) -> np.ndarray:
    """(n, 4) x, y, direction, ending -> (6, cells_h, cells_w): presence, x/y offsets, cos, sin, ending.
    Where two minutiae fall in one cell, the later one wins (rare: they are a ridge period apart)."""
    t = np.zeros((OUTPUTS, cells_h, cells_w), np.float32)
    if len(minutiae) == 0:
        return t
    col, row = (minutiae[:, 0] // CELL).astype(int), (minutiae[:, 1] // CELL).astype(int)
    ok = (row >= 0) & (row < cells_h) & (col >= 0) & (col < cells_w)
    m, row, col = minutiae[ok], row[ok], col[ok]
    t[0, row, col] = 1.0
    t[1, row, col] = m[:, 0] / CELL - col
    t[2, row, col] = m[:, 1] / CELL - row
    t[3, row, col] = np.cos(m[:, 2])
    t[4, row, col] = np.sin(m[:, 2])
    t[5, row, col] = m[:, 3]
    return t


def loss(out: torch.Tensor, target: torch.Tensor, positive_weight: float = 4.0) -> dict[str, torch.Tensor]:
    present = target[:, 0]
    weight = 1.0 + (positive_weight - 1.0) * present
    presence = F.binary_cross_entropy_with_logits(out[:, 0], present, weight=weight)
    n = present.sum().clamp(min=1.0)
    offset = ((torch.sigmoid(out[:, 1:3]) - target[:, 1:3]).abs().sum(1) * present).sum() / n
    direction = F.normalize(out[:, 3:5], dim=1)
    angle = ((1.0 - (direction * target[:, 3:5]).sum(1)) * present).sum() / n
    ending = (F.binary_cross_entropy_with_logits(out[:, 5], target[:, 5], reduction="none") * present).sum() / n
    total = presence + offset + angle + 0.2 * ending
    return {"total": total, "presence": presence, "offset": offset, "angle": angle, "ending": ending}


def decode(out: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(6, h, w) outputs of one print -> (n, 5) x, y, direction (pyfing's: counter-clockwise with y up, as
    `fingerprint.model.leader` reports LEADER's), ending, probability: the cells that pass `threshold`
    and are the most probable of their 3 x 3 cells."""
    logit = out[0]
    peak = logit >= F.max_pool2d(torch.from_numpy(logit)[None, None], 3, 1, 1)[0, 0].numpy()
    prob = 1.0 / (1.0 + np.exp(-logit))
    rows, cols = np.nonzero(peak & (prob >= threshold))
    offsets = 1.0 / (1.0 + np.exp(-out[1:3, rows, cols]))
    x, y = (cols + offsets[0]) * CELL, (rows + offsets[1]) * CELL
    theta = np.arctan2(out[4, rows, cols], out[3, rows, cols])
    ending = out[5, rows, cols] >= 0
    return np.stack([x, y, np.remainder(-theta, 2 * math.pi), ending, prob[rows, cols]], 1).astype(np.float32)


def find(net: StudentNet, gray: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The student's minutiae of a 500 dpi (H, W) uint8 image, as `fingerprint.model.leader.run(...).points`."""
    h, w = gray.shape
    ph, pw = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
    canvas = np.full((ph, pw), gray[0, 0], np.float32)
    canvas[:h, :w] = gray
    with torch.inference_mode():
        out = net(torch.from_numpy(canvas)[None, None])[0].numpy()
    found = decode(out, threshold)
    return found[(found[:, 0] < w) & (found[:, 1] < h)]
