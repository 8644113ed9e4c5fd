"""A bank of master fingerprints stored as int8, built in chunks so an interrupted build resumes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from lab.synth.masters import generate_masters

_CHUNK = 50


def build_bank(
    directory: Path,
    count: int,
    first_seed: int = 1_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Masters for seeds first_seed..first_seed+count-1 as (count, 1, H, W) int8 (ridge = +127)."""
    directory.mkdir(parents=True, exist_ok=True)
    chunks = []
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        path = directory / f"masters_{first_seed + start}_{n}.pt"
        if path.exists():
            chunk = torch.load(path)
        else:
            ridges = generate_masters(list(range(first_seed + start, first_seed + start + n))).ridges
            chunk = torch.round(ridges * 127).to(torch.int8)
            tmp = path.with_suffix(".tmp")
            torch.save(chunk, tmp)
            tmp.replace(path)
        chunks.append(chunk)
        if progress is not None:
            progress(start + n, count)
    return torch.cat(chunks)
