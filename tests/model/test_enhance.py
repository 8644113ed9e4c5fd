"""Enhancement joins broken ridges along their own orientation and leaves the background alone."""

from __future__ import annotations

import math

import torch

from fingerprint.model.enhance import _gabor_bank, enhance, gabor_responses, ridge_orientation


def _ridges(angle: float, size: int = 96, period: float = 4.5) -> torch.Tensor:
    """Straight ridges running at `angle` (radians), values in [-1, 1]."""
    c = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    across = -xx * math.sin(angle) + yy * math.cos(angle)
    return torch.cos(2 * math.pi * across / period)[None, None]


def test_orientation_follows_the_ridges() -> None:
    for angle in (0.0, math.pi / 5, math.pi / 2, 2.5):
        theta = ridge_orientation(_ridges(angle))[0, 0, 24:-24, 24:-24]
        diff = torch.remainder(theta - angle + math.pi / 2, math.pi) - math.pi / 2
        assert diff.abs().max().item() < 0.1


def test_broken_ridges_come_out_closer_to_the_clean_pattern() -> None:
    clean = _ridges(math.pi / 3)
    gen = torch.Generator().manual_seed(0)
    # a dry finger: ridges broken into dots, plus sensor noise
    holes = (torch.rand(clean.shape, generator=gen) < 0.35).float()
    broken = clean * (1 - holes) + 0.4 * torch.randn(clean.shape, generator=gen)
    out = enhance(broken.clamp(-1, 1), torch.ones_like(clean))
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))

    def corr(a: torch.Tensor) -> float:
        return torch.nn.functional.cosine_similarity(a[inner].flatten(), clean[inner].flatten(), dim=0).item()

    assert corr(out) > corr(broken) + 0.1


def test_background_stays_zero_and_output_is_bounded() -> None:
    x = _ridges(1.0)
    mask = torch.zeros_like(x)
    mask[..., 20:60, 20:60] = 1
    out = enhance(x, mask)
    assert out[mask == 0].abs().max().item() == 0.0
    assert out.abs().max().item() <= 1.0


def test_the_filter_bank_by_fft_is_the_padded_convolution() -> None:
    gen = torch.Generator().manual_seed(1)
    for shape in ((1, 1, 200, 200), (3, 1, 57, 90)):  # odd sides and a batch: FFT lengths other than the sides
        x = torch.randn(shape, generator=gen)
        direct = torch.nn.functional.conv2d(x, _gabor_bank(), padding=_gabor_bank().shape[-1] // 2)
        assert torch.allclose(gabor_responses(x), direct, atol=2e-5)
