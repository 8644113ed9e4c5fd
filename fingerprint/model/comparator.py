"""The one scorer: every score the service returns, and every score calibration, evaluation, training
validation and benchmarks report, is computed here, from the model card.

A comparison runs in up to three stages, each on the best candidates of the one before (the
shortlist sizes are part of the card's scoring, not of the search): the probe's best view against
each search vector (cosine), then the descriptor grids (`GridMatcher`, seeded with those cosines),
then the minutiae (`MinutiaeMatcher`), fused with the grid cosine by the card's weight. Scores live
on a cosine scale inside the stages and are mapped to [0, 1] once, by `to_score`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from fingerprint.model.dense import GridMatcher
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate, Probe, fused_cosine

if TYPE_CHECKING:
    from fingerprint.model.embedder import Embedding
    from fingerprint.model.weights import ModelMeta

T = TypeVar("T")

VIEW_SHORTLIST = 256  # candidates by the probe's centred view that its shifted views re-score
GRID_SHORTLIST = 64  # of those, the best by views that the descriptor grids re-score
MINUTIAE_SHORTLIST = 8  # of those, the best by grid that the minutiae re-score (~2.3 ms each)


@dataclass(frozen=True)
class Comparator:
    grid: GridMatcher | None = None  # None: the model compares search vectors only
    minutiae: MinutiaeMatcher = field(default_factory=MinutiaeMatcher)
    minutiae_weight: float = 0.0
    view_shortlist: int = VIEW_SHORTLIST
    grid_shortlist: int = GRID_SHORTLIST
    minutiae_shortlist: int = MINUTIAE_SHORTLIST

    @classmethod
    def from_card(cls, meta: ModelMeta) -> Comparator:
        return cls(meta.grid_matcher(), meta.minutiae_matcher(), meta.minutiae_weight)

    @staticmethod
    def to_score(cos: T) -> T:
        """Cosines (and fused cosines) mapped to the [0, 1] scores the service returns."""
        return (cos + 1.0) / 2.0  # type: ignore[operator, return-value]

    # --- the stages, on the cosine scale ---------------------------------------------------------------

    @staticmethod
    def view_cosines(probe_views: np.ndarray, templates: np.ndarray) -> np.ndarray:
        """(P, G): each probe's best view (P, K, D) against each search vector (G, D)."""
        cos: np.ndarray = np.einsum("pkd,gd->pgk", probe_views, templates).max(axis=2)
        return cos

    @staticmethod
    def view_cosines_torch(templates: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        """(G,): one probe's best view (K, D) against each float32 search vector (G, D)."""
        return (templates @ views.T).max(dim=1).values

    def grid_cosines(self, probe_grids: torch.Tensor, grids: torch.Tensor, view_cos: torch.Tensor) -> torch.Tensor:
        """(P, G) grid cosines seeded with the view cosines; the view cosines when the model has no grids."""
        if self.grid is None:
            return view_cos
        with torch.inference_mode():
            return self.grid.scores(probe_grids, grids, view_cos)

    @property
    def fuses_minutiae(self) -> bool:
        return self.minutiae_weight > 0

    def probe(self, minutiae: MinutiaeTemplate) -> Probe:
        """What a probe's minutiae are compared as (built once per probe, off the event loop)."""
        return self.minutiae.probe(minutiae)

    def fuse(self, grid_cos: T, minutiae_scores: T) -> T:
        """Grid cosines (one or an array) fused with minutiae scores in [0, 1]; unchanged without minutiae."""
        if not self.fuses_minutiae:
            return grid_cos
        return fused_cosine(grid_cos, minutiae_scores, self.minutiae_weight)  # type: ignore[type-var]

    def fused(self, grid_cos: Sequence[float], probe: MinutiaeTemplate | Probe,
              stored: Sequence[MinutiaeTemplate | None]) -> list[float]:
        """Grid cosines fused with the minutiae scores; a template stored without minutiae scores 0 on them."""
        scores = self.minutiae.scores(probe, list(stored))
        return [self.fuse(g, 0.0 if m is None else m) for g, m in zip(grid_cos, scores, strict=True)]

    # --- every pair of a set (calibration, evaluation, release) ---------------------------------------

    def all_pairs(self, embeddings: Sequence[Embedding]) -> np.ndarray:
        """`cos[probe, enrolled]` for every image as a probe against every image enrolled, exactly as a
        verify of that probe against that one enrolled template would score it (before `to_score`)."""
        views = np.stack([e.views for e in embeddings])
        view_cos = self.view_cosines(views, views[:, 0])
        grids = [e.dense for e in embeddings]
        if self.grid is None or any(g is None for g in grids):
            return view_cos
        stacked = torch.from_numpy(np.stack(grids))  # type: ignore[arg-type]
        out: np.ndarray = self.grid_cosines(stacked, stacked, torch.from_numpy(view_cos)).numpy()
        minutiae = [e.minutiae for e in embeddings]
        if self.fuses_minutiae and all(m is not None for m in minutiae):
            out = self.fuse(out, self.minutiae.all_pairs(minutiae))  # type: ignore[arg-type]
        return out
