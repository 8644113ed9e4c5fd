"""One-pixel-wide ridge skeletons (Zhang-Suen thinning) and crossing numbers, as 3x3 lookups.

Each pixel's eight neighbours are packed into a byte by one convolution; a 256-entry table then says
whether the pixel may be deleted in each Zhang-Suen sub-iteration and what its crossing number is
(1: a ridge ends, 3: a ridge splits), so the whole image is processed in a few tensor operations.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

# bit k of a pixel's code is its neighbour P(k+2) of Zhang-Suen: N, NE, E, SE, S, SW, W, NW
_CODE_WEIGHTS = torch.tensor([[128.0, 1.0, 2.0], [64.0, 0.0, 4.0], [32.0, 16.0, 8.0]]).view(1, 1, 3, 3)
_MAX_ITERATIONS = 40


@lru_cache(maxsize=1)
def _tables() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    first = torch.zeros(256, dtype=torch.bool)
    second = torch.zeros(256, dtype=torch.bool)
    crossing = torch.zeros(256, dtype=torch.int64)
    for code in range(256):
        p = [(code >> k) & 1 for k in range(8)]
        transitions = sum(1 for k in range(8) if p[k] == 0 and p[(k + 1) % 8] == 1)
        n, _, e, _, s, _, w, _ = p
        if 2 <= sum(p) <= 6 and transitions == 1:
            first[code] = n * e * s == 0 and e * s * w == 0
            second[code] = n * e * w == 0 and n * s * w == 0
        crossing[code] = sum(abs(p[k] - p[(k + 1) % 8]) for k in range(8)) // 2
    return first, second, crossing


def neighbour_codes(binary: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1} float -> each pixel's neighbourhood byte (int64)."""
    return F.conv2d(binary, _CODE_WEIGHTS, padding=1).long()


def thin(binary: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of (B, 1, H, W) {0, 1} float ridges to one-pixel-wide lines."""
    first, second, _ = _tables()
    for _ in range(_MAX_ITERATIONS):
        changed = False
        for table in (first, second):
            delete = table[neighbour_codes(binary)] & (binary > 0)
            if bool(delete.any()):
                binary = binary.masked_fill(delete, 0.0)
                changed = True
        if not changed:
            break
    return binary


def crossing_numbers(skeleton: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) crossing number of every skeleton pixel (0 off the skeleton)."""
    _, _, crossing = _tables()
    return crossing[neighbour_codes(skeleton)] * (skeleton > 0).long()
