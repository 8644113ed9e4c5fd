"""The probe's minutiae network, distilled from LEADER (`lab/distillation`): a small encoder-decoder that
reads a 500 dpi print and, on a grid of 4 px cells, says where LEADER would find minutiae.

LEADER computes its maps at full resolution through two stacked U-Nets (~0.4 s a print on two cores), too
slow for a probe; enrolment keeps LEADER. Minutiae are at least a ridge period (~9 px) apart, so one cell
of 4 px rarely holds two, and an offset keeps the position to a pixel. Outputs per cell: minutia logit
(LEADER's smoothed probability, the highest in the cell, so LEADER's threshold applies), x and y offset
of the nearest minutia (-1 to 2 cells: a peak found one cell off still lands on it), cos and sin of its
direction (image frame: x right, y down), ending logit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from fingerprint.model.leader import QUALITY_THRESHOLD

CELL = 4  # px per output cell
MULTIPLE = 16  # input sides are padded to this (two more halvings below the cells)
OUTPUTS = 6


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


NORM_PX = 17  # about two ridge periods
THRESHOLD = QUALITY_THRESHOLD  # LEADER's, on the probability the student learns


def _box_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of each pixel's NORM_PX x NORM_PX neighbourhood (the part inside the image), from running
    sums along rows then columns: the same values as an average pool (within 1e-4 grey levels) at under
    half its cost, which was a sixth of a fast probe's minutiae."""
    return _running_mean(_running_mean(x, 2), 3)


def _running_mean(x: torch.Tensor, dim: int) -> torch.Tensor:
    # summed in float64: a float32 running sum of squared grey levels over a whole row loses the small
    # differences between neighbouring windows
    n, r = x.shape[dim], NORM_PX // 2
    sums = torch.cumsum(x.double(), dim)
    sums = torch.cat([torch.zeros_like(sums.narrow(dim, 0, 1)), sums], dim)
    at = torch.arange(n)
    hi, lo = (at + r + 1).clamp(max=n), (at - r).clamp(min=0)
    shape = [1] * x.dim()
    shape[dim] = n
    counts = (hi - lo).to(torch.float64).reshape(shape)
    return ((sums.index_select(dim, hi) - sums.index_select(dim, lo)) / counts).to(x.dtype)


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
        x = local_contrast(image).to(cast(nn.Conv2d, self.head[1]).weight.dtype)  # the statistics in float32 whatever the body's
        c1 = self.enc1(self.stem(x))
        c2 = self.enc2(c1)
        c3 = self.enc3(c2)
        d2 = self.dec2(torch.cat([F.interpolate(c3, scale_factor=2.0, mode="nearest"), c2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), c1], 1))
        out: torch.Tensor = self.head(d1)
        return out


def offset_cells(out: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(out) * 3.0 - 1.0  # -1 to 2 cells


def decode(out: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """(6, h, w) outputs of one print -> (n, 5) x, y, direction (pyfing's: counter-clockwise with y up, as
    `fingerprint.model.leader` reports LEADER's), ending, probability: the cells that pass `threshold`
    and are the most probable of their 3 x 3 cells."""
    logit = out[0]
    peak = logit >= F.max_pool2d(torch.from_numpy(logit)[None, None], 3, 1, 1)[0, 0].numpy()
    prob = 1.0 / (1.0 + np.exp(-logit))
    rows, cols = np.nonzero(peak & (prob >= threshold))
    offsets = offset_cells(torch.from_numpy(out[1:3, rows, cols])).numpy()
    x, y = (cols + offsets[0]) * CELL, (rows + offsets[1]) * CELL
    theta = np.arctan2(out[4, rows, cols], out[3, rows, cols])
    ending = out[5, rows, cols] >= 0
    return np.stack([x, y, np.remainder(-theta, 2 * math.pi), ending, prob[rows, cols]], 1).astype(np.float32)


def served(net: StudentNet, dtype: torch.dtype = torch.float32) -> StudentNet:
    """A copy of an evaluated network as the service runs it: each batch norm folded into the convolution
    before it, weights channels-last (a 400 px window on one core: 43 -> 37 ms; outputs within 1e-5), in
    `dtype` (bfloat16 where the CPU computes it natively: the body's convolutions ~11 -> ~6 ms a window)."""
    out = copy.deepcopy(net).eval()
    for module in out.modules():
        if isinstance(module, nn.Sequential) and len(module) > 1 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d):
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    cast(Any, out).to(dtype=dtype, memory_format=torch.channels_last)  # in place; the keyword is missing from torch's stubs
    return out


def find(net: StudentNet, gray: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """The minutiae of a 500 dpi (H, W) uint8 image, as `fingerprint.model.leader.run(...).points`."""
    h, w = gray.shape
    ph, pw = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
    canvas = np.full((ph, pw), gray[0, 0], np.float32)
    canvas[:h, :w] = gray
    with torch.inference_mode():
        out = net(torch.from_numpy(canvas)[None, None].contiguous(memory_format=torch.channels_last))[0]
        out = out.float().contiguous().numpy()
    found = decode(out, threshold)
    inside: np.ndarray = found[(found[:, 0] < w) & (found[:, 1] < h)]
    return inside


def finder(net: StudentNet, dtype: torch.dtype = torch.float32) -> Callable[[np.ndarray], np.ndarray]:
    """As `fingerprint.model.leader.finder`: 500 dpi (H, W) uint8 -> (n, 5) minutiae, by the `served` network."""
    fast = served(net, dtype)
    return lambda image: find(fast, image)
