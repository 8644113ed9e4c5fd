"""Dense matching finds a print's grid under relative shifts and keeps the mask through int8."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fingerprint.model.dense import (
    MAX_SHIFT,
    cell_mask,
    dense_grid,
    dense_scores,
    from_int8,
    grid_scores,
    rotate_cells,
    to_int8,
)


def _cells(seed: int, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, 16, 10, 10, generator=g), dim=1)


def _moved(cells: torch.Tensor, dy: int) -> torch.Tensor:
    out = torch.zeros_like(cells)
    out[:, :, dy:, :] = cells[:, :, : cells.shape[2] - dy, :]
    return out


def test_a_grid_is_found_again_under_shifts_up_to_the_search_radius() -> None:
    a = _cells(0)
    ones = torch.ones(1, 10, 10)
    itself = float(dense_scores(a, ones, a, ones))
    assert abs(itself - 100 / 108) < 1e-5  # every cell agrees; the prior discounts small overlaps
    for dy in range(1, MAX_SHIFT + 1):
        b = _moved(a, dy)
        overlap = 10 * (10 - dy)
        assert abs(float(dense_scores(a, ones, b, cell_mask(b))) - overlap / (overlap + 8)) < 1e-5
    beyond = _moved(a, MAX_SHIFT + 1)
    assert float(dense_scores(a, ones, beyond, cell_mask(beyond))) < 0.3
    assert float(dense_scores(a, ones, _cells(1), ones)) < 0.3  # another print


def test_int8_grids_keep_their_mask_and_their_scores() -> None:
    prepared = torch.zeros(2, 2, 160, 160)
    prepared[:, :, 40:, :] = 1.0  # the top quarter is off the print
    cells, mask = dense_grid(torch.randn(2, 16, 10, 10), prepared)
    assert mask[:, :2].sum() == 0 and mask[:, 3:].all()
    stored = to_int8(cells)
    assert torch.equal(cell_mask(from_int8(stored)), mask)
    exact = dense_scores(cells, mask, cells, mask)
    assert torch.allclose(grid_scores(stored, stored), exact, atol=0.01)
    assert grid_scores(stored, stored).shape == (2, 2)


def _shift_loop(fa: torch.Tensor, fb: torch.Tensor, radius: int) -> torch.Tensor:
    """The definition, one relative shift at a time: a's cell (y, x) meets b's (y - dy, x - dx)."""
    ma, mb = cell_mask(fa), cell_mask(fb)
    h, w = fa.shape[-2:]
    best = torch.full((len(fa), len(fb)), -1e9)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            ya, yb = slice(max(0, dy), h + min(0, dy)), slice(max(0, -dy), h + min(0, -dy))
            xa, xb = slice(max(0, dx), w + min(0, dx)), slice(max(0, -dx), w + min(0, -dx))
            num = torch.einsum("ichw,jchw->ij", fa[:, :, ya, xa], fb[:, :, yb, xb])
            overlap = torch.einsum("ihw,jhw->ij", ma[:, ya, xa], mb[:, yb, xb])
            best = torch.maximum(best, num / (overlap + 8))
    return best


def test_the_grid_scorer_equals_the_shift_by_shift_definition() -> None:
    cells = _cells(2, 6)
    cells[:3, :, :2] = 0  # partial prints: masks differ between grids
    cells[3:, :, :, 7:] = 0
    stored = to_int8(cells)
    f = from_int8(stored)
    for radius in (1, 3, 4):  # fewer probes than templates and the other way round: two code paths
        assert torch.allclose(grid_scores(stored[:2], stored, radius), _shift_loop(f[:2], f, radius), atol=1e-5)
        assert torch.allclose(grid_scores(stored, stored[:2], radius), _shift_loop(f, f[:2], radius), atol=1e-5)


def test_a_turned_grid_is_found_when_its_rotation_is_searched() -> None:
    a = _cells(3)
    ones = torch.ones(1, 10, 10)
    turned, turned_mask = rotate_cells(a, ones, 20.0)
    stored_a, stored_turned = to_int8(a), to_int8(turned)
    plain = float(grid_scores(stored_turned, stored_a))
    searched = float(grid_scores(stored_turned, stored_a, rotations=(-20.0, 20.0)))
    assert searched > plain + 0.2  # turning the probe back by -20 degrees realigns most cells
    assert float(grid_scores(stored_a, stored_a, rotations=(-20.0, 20.0))) == float(grid_scores(stored_a, stored_a))
    assert turned_mask.sum() < 100  # corners leave the grid
