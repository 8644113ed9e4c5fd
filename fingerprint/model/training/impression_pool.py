"""Prepared synthetic impressions kept between steps, so a batch need not render and prepare every one.

Rendering 40 synthetic impressions and preparing a batch of 64 is ~0.4 s of a ~1.1 s bfloat16 step on
this 2-core CPU, and the two cores are already busy (a prefetch thread made steps slower). The pool
holds `per_finger` prepared impressions of every master finger (bfloat16, ~100 KB each) and re-renders
`refresh` of them, at random, every step, so the data keeps moving while most of the cost goes. Building
the pool takes minutes, so it is kept in a file beside the master bank: the next stage of a chain (same
fingers, seed and preparation) reads the very impressions it would have rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from fingerprint.model.synth.impressions import render_impressions

Prepare = Callable[[torch.Tensor], torch.Tensor]  # (B, 1, H, W) canvases -> (B, C, S, S) prepared images
_CHUNK = 64


def pool_file(folder: Path, fingers: int, per_finger: int, seed: int, window: int, pixel_statistics: bool) -> Path:
    return folder / f"pool-{fingers}x{per_finger}-seed{seed}-window{window}{'-pixelstats' if pixel_statistics else ''}.pt"


class ImpressionPool:
    images: torch.Tensor  # (fingers x per_finger, C, S, S) bfloat16, finger f's impressions at rows f*k .. f*k+k-1

    def __init__(self, masters: torch.Tensor, per_finger: int, prepare: Prepare, gen: torch.Generator,
                 progress: Callable[[int, int], None] | None = None, saved: Path | None = None) -> None:
        """`saved`: a file this pool is read from if it exists, else written to once built; its name must
        say everything the impressions depend on (`pool_file`)."""
        if per_finger < 2:
            raise ValueError("an impression pool needs at least 2 impressions per finger (pairs are drawn from it)")
        self.masters, self.per_finger, self.prepare = masters, per_finger, prepare
        n = len(masters) * per_finger
        # the first chunk is rendered either way: it is how a saved pool is recognised as this code's
        first = self._rendered(torch.arange(min(_CHUNK, n)), gen)
        if saved is not None and saved.exists():
            images = torch.load(saved, weights_only=True)
            if images.shape == (n, *first.shape[1:]) and torch.allclose(images[: len(first)].float(), first.float(),
                                                                         rtol=0.02, atol=0.02):
                self.images = images
                return
        self.images = torch.empty((n, *first.shape[1:]), dtype=torch.bfloat16)
        self.images[: len(first)] = first
        for start in range(len(first), n, _CHUNK):
            slots = torch.arange(start, min(start + _CHUNK, n))
            self.images[slots] = self._rendered(slots, gen)
            if progress is not None:
                progress(int(slots[-1]) + 1, n)
        if saved is not None:
            tmp = saved.with_suffix(".tmp")
            torch.save(self.images, tmp)
            tmp.replace(saved)

    def __len__(self) -> int:
        return len(self.masters) * self.per_finger

    def _rendered(self, slots: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        fingers = slots // self.per_finger
        return self.prepare(render_impressions(self.masters[fingers].float() / 127.0, gen)).to(torch.bfloat16)

    def refresh(self, n: int, gen: torch.Generator) -> None:
        """Re-render n slots chosen at random (each finger keeps its `per_finger` slots)."""
        if n > 0:
            slots = torch.randperm(len(self), generator=gen)[:n]
            self.images[slots] = self._rendered(slots, gen)

    def draw(self, fingers: torch.Tensor, gen: torch.Generator, paired: bool = False) -> torch.Tensor:
        """Float32 prepared impressions of `fingers`, one at random each; with `paired`, `fingers` comes
        as consecutive pairs of one finger (rows 2k, 2k+1) and each pair gets two different impressions."""
        k = self.per_finger
        pick = torch.randint(0, k, (len(fingers),), generator=gen)
        if paired:
            # the second of a pair moves 1..k-1 slots on from the first, so the two always differ
            step = torch.randint(1, k, (len(fingers) // 2,), generator=gen)
            pick[1::2] = (pick[0::2] + step) % k
        return self.images[fingers * k + pick].float()
