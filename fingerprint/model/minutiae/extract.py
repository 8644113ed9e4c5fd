"""Minutiae from the Gabor-enhanced ridge map that preprocessing already computes for the network
(over the card's minutiae window, which holds the network's crop and, since 3.5.0, more of the print).

The enhanced channel (250 dpi) is brought back to 500 dpi, thresholded at zero (ridges positive),
thinned, and every skeleton pixel with crossing number 1 or 3 inside the print becomes a candidate.
Candidates closer than half a ridge period to another are the skeleton's own noise (spurs, small
holes) and dropped. (Also dropping two endings that face each other across a short gap, the usual
"broken ridge" rule, lost more true minutiae than it removed false ones on the held-out split: model
card, "Minutiae".) Each minutia's direction is its local ridge orientation, turned the way its traced
skeleton branches say (`_directions`): along the ridge towards its end for an ending and towards the stem
for a bifurcation, so the direction survives the ending/bifurcation swaps that skin pressure causes.
Thresholds were chosen on the held-out split of the training sets (docs/experiments.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.model.enhance import ridge_orientation
from fingerprint.model.minutiae.skeleton import branch_directions, ridge_ends_and_forks, thin
from fingerprint.model.minutiae.template import MinutiaeTemplate

BORDER_PX = 4  # candidates this close to the print's edge are where ridges leave the print, not minutiae
CLUSTER_PX = 4.0  # a candidate this close to another is skeleton noise; both go
MAX_MINUTIAE = 80  # the ones nearest the print's centre, so a template's size is bounded (563 bytes)
MASK_CELL_PX = 16  # the foreground kept with a template: 25x25 blocks for a 400 px window (79 bytes)
_DIRECTION_RADIUS = 5
_BRANCH_PX = 10  # how far a minutia's branches are followed to tell which way it points


def _directions(skeleton: np.ndarray, ys: np.ndarray, xs: np.ndarray, theta: torch.Tensor) -> torch.Tensor:
    """Angle in [0, 2pi) of each minutia: its ridge orientation, turned the way its skeleton (bool) says: an
    ending (one branch) points away from its ridge, a fork (three) towards the branch least like the other
    two (its stem), each branch followed for _BRANCH_PX. Where the skeleton around a point has another
    number of branches, away from the centroid of the skeleton pixels around it. (The centroid alone decided
    before 3.7.0 and pointed 13 % of minutiae the other way after a 15-degree turn of the print; the
    branches 7 %: docs/experiments.md.)"""
    n = len(ys)
    pad = max(_DIRECTION_RADIUS, _BRANCH_PX + 1)
    padded = np.pad(skeleton, pad)
    y0, x0 = ys + pad, xs + pad
    away = np.zeros((n, 2), np.float32)
    vectors, owner = branch_directions(padded, y0, x0, _BRANCH_PX)
    count = np.bincount(owner, minlength=n)
    starts = np.searchsorted(owner, np.arange(n))
    ends = np.nonzero(count == 1)[0]
    away[ends] = -vectors[starts[ends]]
    forks = np.nonzero(count == 3)[0]
    if len(forks):
        branches = vectors[starts[forks, None] + np.arange(3)]  # (f, 3, 2)
        likeness = np.einsum("fid,fjd->fi", branches, branches)  # each branch's dot with all three (itself: 1)
        away[forks] = branches[np.arange(len(forks)), likeness.argmin(1)]
    other = np.nonzero((count != 1) & (count != 3))[0]
    if len(other):
        offsets = np.arange(-_DIRECTION_RADIUS, _DIRECTION_RADIUS + 1)
        patches = padded[(y0[other, None, None] + offsets[None, :, None]),
                         (x0[other, None, None] + offsets[None, None, :])].astype(np.float32)  # (k, 11, 11)
        pixels = np.maximum(patches.sum((1, 2)), 1.0)
        away[other, 0] = -(patches * offsets[None, None, :]).sum((1, 2)) / pixels
        away[other, 1] = -(patches * offsets[None, :, None]).sum((1, 2)) / pixels
    away_t = torch.from_numpy(away)
    flip = (away_t[:, 0] * torch.cos(theta) + away_t[:, 1] * torch.sin(theta)) < 0
    return torch.remainder(theta + math.pi * flip.float(), 2 * math.pi)


def _dilate(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary dilation of a (1, 1, H, W) {0, 1} mask by a k x k square, beyond the map's edge counting
    as background. Rows then columns of shifted byte slices: CPU pooling at stride 1 (max or mean)
    took 0.3-0.8 ms per call on a 200x200 map, these a few hundredths of that."""
    r = k // 2
    h, w = mask.shape[-2:]
    m = mask[0, 0].to(torch.uint8)
    p = F.pad(m, (r, r))
    rows = p[:, 0:w].clone()
    for d in range(1, 2 * r + 1):
        rows |= p[:, d : d + w]
    p = F.pad(rows, (0, 0, r, r))
    out = p[0:h].clone()
    for d in range(1, 2 * r + 1):
        out |= p[d : d + h]
    return out.float().view(1, 1, h, w)


def _erode(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary erosion by a k x k square; beyond the map's edge does not erode (as max pooling's
    padding does not): the background dilated, inverted."""
    return 1.0 - _dilate(1.0 - mask, k)


def extract_minutiae(enhanced: torch.Tensor) -> MinutiaeTemplate:
    """`enhanced`: (S, S) enhanced ridge map at 250 dpi (preprocess.Prepared.minutiae_map; zero off the
    print). Returns minutiae (n, 3) float32 [x, y, angle in radians] in pixels at 500 dpi of that
    window, and the window's foreground as a bool mask of MASK_CELL_PX blocks (2S/16 square)."""
    enh = enhanced.view(1, 1, *enhanced.shape[-2:]).float()
    size = (2 * enh.shape[-2], 2 * enh.shape[-1])
    on_print = (enh != 0).float()
    # close the zero crossings inside the print that the enhanced map has on every ridge flank
    on_print = _erode(_dilate(on_print, 3), 3)
    mask = F.interpolate(on_print, size=size, mode="nearest")
    ridges = (F.interpolate(enh, size=size, mode="bilinear", align_corners=False) > 0) & (mask > 0)
    skeleton = thin(ridges[0, 0].to(torch.uint8))
    # what is known per 250-dpi pixel is read there for each candidate (pixel y, x at 500 dpi is the
    # nearest-upsampled y // 2, x // 2), not upsampled for the whole window
    rows, cols, _ = ridge_ends_and_forks(skeleton)
    inner = _erode(on_print, 2 * (BORDER_PX // 2) + 1)[0, 0].numpy()  # eroded where it costs a sixteenth
    away_from_edge = inner[rows // 2, cols // 2] > 0
    ys, xs = torch.from_numpy(rows[away_from_edge]), torch.from_numpy(cols[away_from_edge])
    foreground = (F.avg_pool2d(on_print, MASK_CELL_PX // 2) > 0.5)[0, 0].numpy()
    if len(ys) == 0:
        return MinutiaeTemplate(np.zeros((0, 3), np.float32), foreground)
    points = torch.stack([xs, ys], 1).float()
    gaps = torch.cdist(points, points)
    gaps.fill_diagonal_(float("inf"))
    keep = gaps.min(1).values >= CLUSTER_PX
    ys, xs = ys[keep], xs[keep]
    theta = ridge_orientation(enh)[0, 0]
    angles = _directions(skeleton.numpy() > 0, ys.numpy(), xs.numpy(), theta[ys // 2, xs // 2])
    m = torch.stack([xs.float(), ys.float(), angles], 1).numpy().astype(np.float32)
    if len(m) > MAX_MINUTIAE:
        centre = np.array([size[1] / 2, size[0] / 2], np.float32)
        m = m[np.argsort(np.hypot(*(m[:, :2] - centre).T))[:MAX_MINUTIAE]]
    return MinutiaeTemplate(m, foreground)
