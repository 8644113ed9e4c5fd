"""A minutiae sketch: each cylinder pooled to 8x8 cells and cut to one bit a cell and layer, kept per
template in memory so identify can rank its shortlist on minutiae without building their cylinders.

Building a candidate's cylinders is most of identify's cost (64 candidates: ~75 of ~170 ms on one
core), and most candidates are impostors that the full comparison then scores low anyway. The sketch
of a template is built once, when it enters the index, from the same cylinders (56 bytes a minutia,
about 2 KB a template); a probe's sketch comes from the cylinders it already has. The sketch score is
the MCC paper's local similarity sort (the mean of the best pairs) over the bits (its bit-based
variant), compared for every candidate in one product of matrices. It only orders candidates: every
score identify returns is still the full comparison's (model/comparator.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fingerprint.model.minutiae.cylinders import CELLS, LAYERS, Cylinders
from fingerprint.model.minutiae.match import MAX_PAIRS, MIN_COMMON_SHARE, pairs_averaged

POOL = 2  # cells of the full cylinder along each side of a sketch cell
_SIDE = CELLS // POOL
_DISC = math.pi * (_SIDE / 2) ** 2  # cells of a sketch's disc: the share valid in both is the full comparison's


@dataclass(frozen=True)
class Sketch:
    angles: np.ndarray  # (n,) float32 minutiae directions
    bits: np.ndarray  # (n, _SIDE * _SIDE * LAYERS / 8) uint8, packed; cells not valid are 0
    valid: np.ndarray  # (n, _SIDE * _SIDE / 8) uint8, packed

    @property
    def nbytes(self) -> int:
        return int(self.angles.nbytes + self.bits.nbytes + self.valid.nbytes)


def sketch_of(c: Cylinders, every_row: bool = False) -> Sketch:
    """The sketch of a set of cylinders: a sketch cell is valid where its POOL x POOL cells all are,
    and a bit is set where their mean value is over one half. Unusable cylinders are left out, or with
    `every_row` (a probe's stacked views, whose row blocks must stay aligned) kept with no valid cell."""
    keep = np.ones(len(c.usable), bool) if every_row else c.usable
    n = int(keep.sum())
    values = c.values[keep].reshape(n, _SIDE, POOL, _SIDE, POOL, LAYERS).mean(axis=(2, 4))
    valid = (c.valid_cells[keep].reshape(n, _SIDE, POOL, _SIDE, POOL).min(axis=(2, 4)) > 0) & c.usable[keep, None, None]
    # layer by layer (each layer's cells together), so that a cell's energy is a sum of whole rows
    bits = ((values > 0.5) & valid[..., None]).transpose(0, 3, 1, 2)
    return Sketch(c.minutiae[keep, 2].astype(np.float32), np.packbits(bits.reshape(n, -1), axis=1),
                  np.packbits(valid.reshape(n, -1), axis=1))


def _unpacked(packed: np.ndarray, width: int) -> torch.Tensor:
    """Packed bits as an (n, width) int8 tensor of 0s and 1s."""
    return torch.from_numpy(np.unpackbits(packed, axis=1, count=width)).view(torch.int8)


def _counts(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """a @ b.T of small non-negative integers, exactly: int8 products summed in int32 (a fourth of the time of
    the float32 product, which gave the same integers)."""
    return torch._int_mm(a, b.T).numpy().astype(np.float32)


def sketch_scores(probe: Sketch, views: int, candidates: Sequence[Sketch | None]) -> np.ndarray:
    """(len(candidates),) scores in [0, 1] of a probe's sketch (its `views` direction views stacked in
    row blocks, as `Probe.stacked`) against each candidate's; 0 for a candidate with none. Each probe
    minutia keeps its best view and its best partner in the candidate; a candidate scores the mean of
    the best of those."""
    out = np.zeros(len(candidates), np.float32)
    chosen = [(k, s) for k, s in enumerate(candidates) if s is not None and len(s.angles)]
    rows = len(probe.angles) // max(views, 1)
    if not chosen or rows == 0:
        return out
    counts = np.array([len(s.angles) for _, s in chosen])
    cells = _SIDE * _SIDE
    a_bits, a_valid = _unpacked(probe.bits, cells * LAYERS), _unpacked(probe.valid, cells)
    b_bits = _unpacked(np.concatenate([s.bits for _, s in chosen]), cells * LAYERS)
    b_valid = _unpacked(np.concatenate([s.valid for _, s in chosen]), cells)
    # bits are their own squares: a cell's energy is how many of its layers are set
    a_energy = a_bits.view(-1, LAYERS, cells).sum(1, dtype=torch.int8)
    b_energy = b_bits.view(-1, LAYERS, cells).sum(1, dtype=torch.int8)
    norm_a2, norm_b2 = _counts(a_energy, b_valid), _counts(a_valid, b_energy)
    cross, common = _counts(a_bits, b_bits), _counts(a_valid, b_valid)
    total = np.sqrt(norm_a2) + np.sqrt(norm_b2)
    lam = 1.0 - np.sqrt(np.clip(norm_a2 + norm_b2 - 2 * cross, 0.0, None)) / np.maximum(total, 1e-9)
    # directions at most a right angle apart: the cosine of their difference is not negative
    b_angles = np.concatenate([s.angles for _, s in chosen])
    aligned = _directions(probe.angles) @ _directions(b_angles).T >= 0
    lam = np.where((common >= MIN_COMMON_SHARE * _DISC) & (total > 0) & aligned, lam, 0.0)
    best = lam.reshape(views, rows, -1).max(0)  # (rows, sum of counts)
    partner = np.maximum.reduceat(best, np.concatenate([[0], np.cumsum(counts)[:-1]]), axis=1).T  # (candidates, rows)
    most = min(MAX_PAIRS, rows)
    best_of = -np.sort(-np.partition(partner, rows - most, axis=1)[:, -most:], axis=1)
    pairs = np.minimum(pairs_averaged(np.minimum(counts, rows)), most)
    out[[k for k, _ in chosen]] = np.cumsum(best_of, axis=1)[np.arange(len(chosen)), pairs - 1] / pairs
    return out


def _directions(angles: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)
