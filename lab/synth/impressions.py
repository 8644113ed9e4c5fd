"""Impressions of master fingerprints: what one touch on one sensor looks like.

Each impression displaces the master elastically, rotates and translates it, keeps only the contact
region (partial when the finger is placed off-centre), applies skin pressure (dry prints break
ridges, wet prints merge them), then renders through a sensor: background, contrast, blur, noise.
Everything is batched torch so impressions are made on the fly during training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lab.synth.masters import CANVAS


def _u(gen: torch.Generator, b: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(b, generator=gen)


def _smooth(gen: torch.Generator, b: int, channels: int, grid: int, size: int) -> torch.Tensor:
    low = torch.randn(b, channels, grid, grid, generator=gen)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=True)


def random_warp(
    images: torch.Tensor,
    gen: torch.Generator,
    max_rotation_deg: float,
    max_shift_px: float,
    elastic_px: float,
    fill: torch.Tensor | float = 0.0,
    scale_range: tuple[float, float] = (0.95, 1.05),
) -> torch.Tensor:
    """Rotate, translate, scale slightly and distort elastically; uncovered area takes `fill`."""
    b, _, h, w = images.shape
    angle = _u(gen, b, -max_rotation_deg, max_rotation_deg) * math.pi / 180
    scale = _u(gen, b, *scale_range)
    shift = torch.stack([_u(gen, b, -1, 1), _u(gen, b, -1, 1)], dim=1) * max_shift_px
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    if elastic_px > 0:
        disp = _smooth(gen, b, 2, 5, h).permute(0, 2, 3, 1) * (elastic_px * 2 / h)
        grid = grid + disp
    fill_t = torch.as_tensor(fill, dtype=images.dtype).reshape(-1, 1, 1, 1)
    out = F.grid_sample(images - fill_t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill_t


def _contact_mask(gen: torch.Generator, b: int, size: int) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - size / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cx = _u(gen, b, -45, 45).view(b, 1, 1)
    cy = _u(gen, b, -45, 45).view(b, 1, 1)
    a = _u(gen, b, 85, 160).view(b, 1, 1)
    bb = _u(gen, b, 110, 190).view(b, 1, 1)
    r = ((xx - cx) / a) ** 2 + ((yy - cy) / bb) ** 2
    r = r + 0.25 * _smooth(gen, b, 1, 6, size)[:, 0]
    mask = torch.sigmoid((1.0 - r) * 12)
    return mask.unsqueeze(1)


def render_impressions(masters: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Grayscale impressions in [0, 255] (ridges dark), shape like `masters`."""
    b = masters.shape[0]
    size = masters.shape[-1]
    assert size == CANVAS
    ridges = random_warp(
        masters, gen, max_rotation_deg=35, max_shift_px=30, elastic_px=7, scale_range=(0.8, 1.2)
    )
    contact = _contact_mask(gen, b, size) * (ridges.abs() > 0.05).float()
    # pressure: a bias moves the ridge/valley boundary; a low-frequency field varies it over the print
    bias = _u(gen, b, -0.6, 0.6).view(b, 1, 1, 1) + 0.35 * _smooth(gen, b, 1, 8, size)
    sharp = _u(gen, b, 2.0, 6.0).view(b, 1, 1, 1)
    ink = torch.sigmoid(sharp * (ridges + bias))
    dry_spots = torch.sigmoid(6 * (_smooth(gen, b, 1, 40, size) + _u(gen, b, 1.2, 4.0).view(b, 1, 1, 1)))
    ink = ink * dry_spots * contact
    background = _u(gen, b, 150, 250).view(b, 1, 1, 1) + 12 * _smooth(gen, b, 1, 3, size)
    contrast = _u(gen, b, 70, 210).view(b, 1, 1, 1)
    img = background - contrast * ink
    # optics: 0-2 passes of a 3x3 box blur approximate a Gaussian of sigma 0-0.8 px, cheaply
    for _ in range(int(torch.randint(0, 3, (1,), generator=gen))):
        img = F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    noise = _u(gen, b, 1.0, 14.0).view(b, 1, 1, 1) * torch.randn(img.shape, generator=gen)
    return torch.clamp(img + noise, 0, 255)
