"""The one scorer's identify stages: which candidates each keeps, and that every score kept is verify's."""

from __future__ import annotations

import torch

from fingerprint.model.comparator import Comparator
from fingerprint.model.dense import GridMatcher, to_int8


def _grids(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return to_int8(torch.nn.functional.normalize(torch.randn(n, 8, 6, 6, generator=g), dim=1))


def test_the_grid_stage_ranks_untilted_then_scores_the_best_at_every_rotation() -> None:
    c = Comparator(GridMatcher(max_shift=2, rotations=(-20.0, 20.0), fusion_weight=0.25))
    probe, grids = _grids(0, 1), _grids(1, 40)
    grids[7] = probe[0]  # a mate
    view_cos = torch.linspace(-0.2, 0.2, 40)
    kept, cos = c.grid_shortlist_cosines(probe, grids, view_cos, 10)
    untilted = Comparator(GridMatcher(max_shift=2, fusion_weight=0.25)).grid_cosines(probe, grids, view_cos[None])[0]
    assert sorted(kept) == sorted(torch.topk(untilted, 10).indices.tolist()) and kept[0] == 7
    # each kept candidate's cosine is verify's (every rotation), best first
    verify = c.grid_cosines(probe, grids[kept], view_cos[kept][None])[0]
    assert torch.equal(cos, verify) and torch.equal(cos, torch.sort(cos, descending=True).values)
    # no more candidates than it keeps: every one scored at every rotation, none ranked untilted
    everyone, all_cos = c.grid_shortlist_cosines(probe, grids[:10], view_cos[:10], 10)
    full = c.grid_cosines(probe, grids[:10], view_cos[:10][None])[0]
    assert everyone == torch.argsort(full, descending=True).tolist() and torch.equal(all_cos, full[everyone])


def test_the_ranking_scores_are_the_untilted_grid_scores_in_integer_arithmetic() -> None:
    matcher = GridMatcher(max_shift=2, rotations=(-20.0, 20.0), fusion_weight=0.25)
    probe, grids = _grids(2, 1), _grids(3, 30)
    probe[:, :, 4:] = 0  # cells off the print: the overlap counts only cells on both
    grids[:10, :, :, :2] = 0
    view_cos = torch.linspace(-0.3, 0.3, 30)
    untilted = GridMatcher(max_shift=2, fusion_weight=0.25).scores(probe, grids, view_cos[None])[0]
    torch.testing.assert_close(matcher.ranking_scores(probe, grids, view_cos), untilted, atol=1e-6, rtol=0)
