"""Master fingerprints: an orientation field with singular points, then ridges grown by Gabor filtering.

The recipe follows SFinGe (Cappelli, Maio, Maltoni): a Sherlock-Monro zero-pole orientation field
placed by fingerprint class, a smoothly varying ridge period, and a ridge pattern grown from noise by
repeatedly applying, at every pixel, the Gabor filter tuned to that pixel's orientation and period.
Growing happens at half resolution (250 dpi) where kernels are 4x smaller, then the pattern is
upsampled to 500 dpi; the random seed alone fixes the identity of a finger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CANVAS = 400  # master size in pixels at 500 dpi
_HALF = CANVAS // 2
_KERNEL = 11
_N_ORIENT = 36
_PERIODS = torch.tensor([3.6, 4.0, 4.4, 4.8, 5.2, 5.6])  # ridge periods at 250 dpi (px)
_CLASSES = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")
_CLASS_WEIGHTS = (0.06, 0.06, 0.34, 0.32, 0.22)  # approximate natural frequencies
_CHUNK = 16


@dataclass(frozen=True)
class MasterBatch:
    ridges: torch.Tensor  # (B, 1, CANVAS, CANVAS) in [-1, 1], +1 = ridge
    classes: list[str]


def _gabor_bank() -> torch.Tensor:
    """Even Gabor kernels, (n_orient * n_period, k*k), for ridges running along angle theta."""
    r = _KERNEL // 2
    ys, xs = torch.meshgrid(
        torch.arange(-r, r + 1, dtype=torch.float32),
        torch.arange(-r, r + 1, dtype=torch.float32),
        indexing="ij",
    )
    kernels = []
    for i in range(_N_ORIENT):
        theta = math.pi * i / _N_ORIENT
        # coordinate across the ridge (normal to the ridge direction)
        across = -xs * math.sin(theta) + ys * math.cos(theta)
        along = xs * math.cos(theta) + ys * math.sin(theta)
        for period in _PERIODS.tolist():
            sigma_across = 0.5 * period
            sigma_along = 0.7 * period
            env = torch.exp(-0.5 * (across**2 / sigma_across**2 + along**2 / sigma_along**2))
            k = env * torch.cos(2 * math.pi * across / period)
            k = k - k.mean() * env / env.mean()  # zero DC so flat areas do not drift
            kernels.append((k / k.abs().sum()).flatten())
    return torch.stack(kernels)


def _smooth_noise(gen: torch.Generator, b: int, grid: int, size: int) -> torch.Tensor:
    low = torch.randn(b, 1, grid, grid, generator=gen)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=True)


def _singular_points(
    cls: str, gen: torch.Generator
) -> tuple[list[complex], list[complex]]:
    """Cores and deltas (in 250-dpi pixels, relative to the canvas centre, y up)."""

    def u(a: float, b: float) -> float:
        return a + (b - a) * float(torch.rand(1, generator=gen))

    cx, cy = u(-15, 15), u(-10, 25)
    if cls == "tented_arch":
        return [complex(cx, cy)], [complex(cx + u(-8, 8), cy - u(28, 45))]
    if cls in ("left_loop", "right_loop"):
        side = -1.0 if cls == "left_loop" else 1.0
        delta = complex(cx + side * u(35, 60), cy - u(35, 60))
        return [complex(cx, cy)], [delta]
    if cls == "whorl":
        d = u(4, 12)
        a = u(0, math.pi)
        c1 = complex(cx + d * math.cos(a), cy + d * math.sin(a))
        c2 = complex(cx - d * math.cos(a), cy - d * math.sin(a))
        dl = complex(cx - u(40, 60), cy - u(35, 55))
        dr = complex(cx + u(40, 60), cy - u(35, 55))
        return [c1, c2], [dl, dr]
    return [], []


def _orientation(cls: str, gen: torch.Generator, size: int) -> torch.Tensor:
    """Ridge direction in radians (image coordinates, y down), shape (size, size)."""
    coords = torch.arange(size, dtype=torch.float32) - size / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    z = torch.complex(xx, yy)
    if cls == "arch":
        height = 20 + 25 * float(torch.rand(1, generator=gen))
        width = 45 + 30 * float(torch.rand(1, generator=gen))
        centre_y = -10 + 30 * float(torch.rand(1, generator=gen))
        bump = height * torch.exp(-(((-yy) - centre_y) / 70.0) ** 2)
        slope = bump * 2 * xx / width**2 * torch.exp(-(xx**2) / width**2)
        theta = torch.atan(slope)  # slope measured with y up
    else:
        cores, deltas = _singular_points(cls, gen)
        theta = torch.zeros_like(xx)
        for d in deltas:
            theta = theta + 0.5 * torch.angle(z - d.conjugate())
        for c in cores:
            theta = theta - 0.5 * torch.angle(z - c.conjugate())
    theta = theta + 0.12 * _smooth_noise(gen, 1, 5, size)[0, 0]
    return -theta  # back to y-down image coordinates


def _finger_mask(gen: torch.Generator, size: int) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - size / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    a = size * (0.36 + 0.06 * float(torch.rand(1, generator=gen)))
    b = size * (0.44 + 0.05 * float(torch.rand(1, generator=gen)))
    r = (xx / a) ** 2 + ((yy + 0.05 * size) / b) ** 2
    return (r < 1.0).float()


def generate_masters(seeds: list[int]) -> MasterBatch:
    """One master per seed; the same seed always yields the same finger, whatever else is in the batch."""
    # each growth round holds every pixel's patch and kernel: ~40 MB a master, grown _CHUNK at a time
    chunks = [_grow(seeds[i : i + _CHUNK]) for i in range(0, len(seeds), _CHUNK)]
    return MasterBatch(torch.cat([c.ridges for c in chunks]), [cls for c in chunks for cls in c.classes])


def _grow(seeds: list[int]) -> MasterBatch:
    size = CANVAS // 2
    bank = _gabor_bank()
    thetas, periods, classes, inits = [], [], [], []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        cls = _CLASSES[int(torch.multinomial(torch.tensor(_CLASS_WEIGHTS), 1, generator=gen))]
        classes.append(cls)
        thetas.append(_orientation(cls, gen, size))
        base = 4.0 + 1.2 * float(torch.rand(1, generator=gen))
        periods.append(base * (1 + 0.08 * _smooth_noise(gen, 1, 4, size)[0, 0]))
        inits.append(torch.randn(1, size, size, generator=gen))
    theta = torch.stack(thetas) % math.pi
    period = torch.stack(periods)
    o_idx = torch.round(theta / math.pi * _N_ORIENT).long() % _N_ORIENT
    p_idx = torch.argmin((period.unsqueeze(-1) - _PERIODS).abs(), dim=-1)
    kidx = (o_idx * len(_PERIODS) + p_idx).flatten(1)  # (B, size*size)
    x = torch.stack(inits)  # (B, 1, size, size)
    b = len(seeds)
    weights = bank[kidx].unsqueeze(-1)  # (B, N, k*k, 1): each pixel's kernel, the same every round
    for _ in range(14):
        patches = F.unfold(x, _KERNEL, padding=_KERNEL // 2).transpose(1, 2).unsqueeze(-2)  # (B, N, 1, k*k)
        y = torch.matmul(patches, weights).view(b, 1, size, size)
        y = y / (y.flatten(1).std(dim=1).view(b, 1, 1, 1) + 1e-6)
        x = torch.clamp(1.5 * y, -1.0, 1.0)
    full = F.interpolate(x, size=(CANVAS, CANVAS), mode="bicubic", align_corners=False)
    ridges = torch.tanh(2.5 * full)
    masks = torch.stack([_finger_mask(torch.Generator().manual_seed(s + 7), CANVAS) for s in seeds])
    return MasterBatch(ridges=ridges * masks.unsqueeze(1), classes=classes)
