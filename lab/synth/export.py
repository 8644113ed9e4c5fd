"""Synthetic fingerprint sets on disk, in the `<finger>_<impression>.png` layout eval reads."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lab.synth.impressions import render_impressions
from lab.synth.masters import generate_masters


def synthetic_impressions(finger_seeds: list[int], impressions: int, seed: int) -> list[list[np.ndarray]]:
    """`impressions` uint8 images for each master seed; deterministic in (seeds, impressions, seed)."""
    masters = generate_masters(finger_seeds).ridges
    gen = torch.Generator().manual_seed(seed)
    images = render_impressions(masters.repeat_interleave(impressions, dim=0), gen)
    arr = images[:, 0].round().to(torch.uint8).numpy()
    return [[arr[f * impressions + i] for i in range(impressions)] for f in range(len(finger_seeds))]


_BLOCK = 250  # synthetic fingers made (and cached by the lab's benchmarks) together


def single_impression_blocks(n: int, first_seed: int) -> list[list[int]]:
    """The seeds of synthetic fingers first_seed.. first_seed + n - 1, in the blocks they are made in."""
    return [list(range(first_seed + start, first_seed + min(n, start + _BLOCK))) for start in range(0, n, _BLOCK)]


def single_impressions(seeds: list[int]) -> list[bytes]:
    """One impression (PNG, 500 dpi) of each synthetic finger, made together as a block (a block's
    first seed seeds its impressions: the same block gives the same images)."""
    return [encode_png(f[0]) for f in synthetic_impressions(seeds, impressions=1, seed=seeds[0])]


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_synthetic_set(
    out: Path, fingers: int, impressions: int, seed: int, progress: Callable[[int], None] | None = None
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for f in range(fingers):
        finger_seed = seed * 100_003 + f
        for i, image in enumerate(synthetic_impressions([finger_seed], impressions, seed + f)[0], start=1):
            (out / f"{f + 1:05d}_{i}.png").write_bytes(encode_png(image))
        if progress is not None:
            progress(1)
