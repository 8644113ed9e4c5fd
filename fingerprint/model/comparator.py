"""The one scorer: every score the service returns, and every score calibration, evaluation, training
validation and benchmarks report, is computed here, from the model card.

A comparison runs in up to three stages, each on the best candidates of the one before (the
shortlist sizes are part of the card's scoring, not of the search): the probe's best view against
each search vector (cosine), then the descriptor grids (`GridMatcher`, seeded with those cosines),
then the minutiae (`MinutiaeMatcher`): the hand-made extraction's and, from 5.0, LEADER's, each
compared by the same matcher and fused with the grid cosine by the card's weights. Scores live on a
cosine scale inside the stages and are mapped to [0, 1] once, by `to_score`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from fingerprint.model.dense import GridMatcher
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate, Probe
from fingerprint.model.minutiae.sketch import Sketch, sketch_of, sketch_scores

if TYPE_CHECKING:
    from fingerprint.model.embedder import Embedding
    from fingerprint.model.weights import ModelMeta

T = TypeVar("T")

# The first two are sized for galleries of ~10,000: at that size a mate from the FVC sensors ranks, by
# the share of other subjects' templates that outscore it here, beyond 256 by view or 64 by grid for
# 10-30 % of probes (lab/evaluation/shortlist_recall.py); each stage past these sizes gained little
VIEW_SHORTLIST = 1024  # candidates by the probe's centred view that its shifted views re-score
GRID_SHORTLIST = 256  # of those, the best by views that the descriptor grids re-score
MINUTIAE_SHORTLIST = 64  # of those, the best by grid that the minutiae re-score (chosen leave-one-sensor-out)
# of those, the best by grid and minutiae sketch (model/minutiae/sketch.py) that the full comparison scores:
# the rest never have their cylinders built (chosen leave-one-sensor-out)
SKETCH_SHORTLIST = 16
# of those, the best by grid and LEADER's minutiae that the hand-made minutiae also re-score: building a
# candidate's cylinders is most of identify's cost, and the hand-made sets are the larger ones
OWN_MINUTIAE_SHORTLIST = 2  # at least identify's top_k (chosen leave-one-sensor-out)


@dataclass(frozen=True)
class MinutiaeProbe:
    """A probe's minutiae as compared: the cylinders of each set, built once per probe."""

    own: Probe
    leader: Probe | None

    @property
    def compared(self) -> Probe:
        """The set every candidate of the minutiae shortlist is compared on: LEADER's where the model has it."""
        return self.own if self.leader is None else self.leader


@dataclass(frozen=True)
class Comparator:
    grid: GridMatcher | None = None  # None: the model compares search vectors only
    minutiae: MinutiaeMatcher = field(default_factory=MinutiaeMatcher)
    minutiae_weight: float = 0.0
    leader_weight: float = 0.0  # LEADER's minutiae (model/leader.py), compared by the same matcher
    view_shortlist: int = VIEW_SHORTLIST
    grid_shortlist: int = GRID_SHORTLIST
    minutiae_shortlist: int = MINUTIAE_SHORTLIST
    own_minutiae_shortlist: int = OWN_MINUTIAE_SHORTLIST
    sketch_shortlist: int = SKETCH_SHORTLIST  # 0: every candidate gets the full comparison

    @classmethod
    def from_card(cls, meta: ModelMeta) -> Comparator:
        return cls(meta.grid_matcher(), meta.minutiae_matcher(), meta.minutiae_weight, meta.leader_weight)

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

    def grid_shortlist_cosines(self, probe_grid: torch.Tensor, grids: torch.Tensor, view_cos: torch.Tensor,
                               keep: int) -> tuple[list[int], torch.Tensor]:
        """Identify's grid stage on one probe: the positions in `grids` (G, C, H, W) of the `keep` best
        candidates, best first, and their grid cosines, as verify scores them. Past `keep`, the candidates are
        first ranked on the grids untilted, in integer arithmetic (`GridMatcher.ranking_scores`, a small share
        of the cost of the card's seven placements), and only the best `keep` are scored at every rotation.
        The untilted ranking kept a mate among 10,000 templates as often as the tilted one on every real
        sensor, or more often: tilting lifts impostors' best placement more than a mate's
        (lab/evaluation/shortlist_recall.py)."""
        keep = min(keep, len(grids))
        if self.grid is None or not self.grid.rotations or len(grids) <= keep:
            cos = self.grid_cosines(probe_grid, grids, view_cos[None])[0]
            order = torch.topk(cos, keep).indices
            return order.tolist(), cos[order]
        with torch.inference_mode():
            untilted = self.grid.ranking_scores(probe_grid, grids, view_cos)
        best = torch.topk(untilted, keep).indices
        cos = self.grid_cosines(probe_grid, grids[best], view_cos[best][None])[0]
        order = torch.argsort(cos, descending=True, stable=True)
        return best[order].tolist(), cos[order]

    @property
    def fuses_minutiae(self) -> bool:
        return self.minutiae_weight > 0 or self.leader_weight > 0

    def probe(self, minutiae: MinutiaeTemplate) -> MinutiaeProbe:
        """What a probe's minutiae are compared as (built once per probe, off the event loop)."""
        leader = minutiae.leader_template() if self.leader_weight > 0 else None
        return MinutiaeProbe(self.minutiae.probe(minutiae), None if leader is None else self.minutiae.probe(leader))

    def sketches(self, templates: Sequence[MinutiaeTemplate | None]) -> list[Sketch | None]:
        """Each stored template's sketch of the minutiae set the shortlist compares (LEADER's where the model
        fuses them), None where it has none."""
        sets = [None if t is None else t.leader_template() if self.leader_weight > 0 else t for t in templates]
        built = iter(self.minutiae.cylinders_of([t for t in sets if t is not None]))
        return [None if t is None else sketch_of(next(built)) for t in sets]

    def fuse(self, grid_cos: T, own: T, leader: T | float = 0.0) -> T:
        """Grid cosines (one or an array) fused with each minutiae set's scores in [0, 1], each mapped to
        [-1, 1] and weighted, rescaled to the grid's scale; unchanged without minutiae."""
        if not self.fuses_minutiae:
            return grid_cos
        total = 1.0 + self.minutiae_weight + self.leader_weight
        return (grid_cos + self.minutiae_weight * (2.0 * own - 1.0)  # type: ignore[operator, return-value]
                + self.leader_weight * (2.0 * leader - 1.0)) / total  # type: ignore[operator]

    def fused(self, grid_cos: Sequence[float], probe: MinutiaeTemplate | MinutiaeProbe,
              stored: Sequence[MinutiaeTemplate | None]) -> list[float]:
        """Grid cosines fused with the minutiae scores; a template stored without minutiae (or without
        LEADER's) scores 0 on them."""
        cylinders = probe if isinstance(probe, MinutiaeProbe) else self.probe(probe)
        own = self.minutiae.scores(cylinders.own, list(stored))
        leader: list[float | None] = [0.0] * len(own)
        if cylinders.leader is not None:
            leader = self.minutiae.scores(cylinders.leader, [None if t is None else t.leader_template() for t in stored])
        return [self.fuse(g, 0.0 if m is None else m, 0.0 if n is None else n)
                for g, m, n in zip(grid_cos, own, leader, strict=True)]

    def ranked(self, grid_cos: Sequence[float], probe: MinutiaeTemplate | MinutiaeProbe,
               stored: Sequence[MinutiaeTemplate | None], top_k: int,
               sketches: Sequence[Sketch | None] | None = None) -> list[tuple[int, float]]:
        """Identify's re-ranking of a shortlist: (position in `stored`, fused cosine), best first, at most
        max(top_k, own_minutiae_shortlist) of them. Given the candidates' `sketches`, only the best
        sketch_shortlist by grid and sketch are compared further. With both minutiae sets, LEADER's are
        compared first, and only the best by grid and LEADER are also compared on the hand-made minutiae;
        each returned score is the full `fused` one, as verify would give."""
        probe = probe if isinstance(probe, MinutiaeProbe) else self.probe(probe)
        sketched = (probe.leader is not None) == (self.leader_weight > 0)  # the candidates' sketches are of that set
        if sketches is not None and sketched and 0 < max(top_k, self.sketch_shortlist) < len(stored):
            keep = self._by_sketch(grid_cos, probe, sketches, max(top_k, self.sketch_shortlist))
            ranked = self.ranked([grid_cos[i] for i in keep], probe, [stored[i] for i in keep], top_k)
            return [(keep[j], score) for j, score in ranked]
        if probe.leader is None or self.minutiae_weight <= 0 or len(stored) <= max(top_k, self.own_minutiae_shortlist):
            return sorted(enumerate(self.fused(grid_cos, probe, stored)), key=lambda p: -p[1])[:top_k]
        leader = self.minutiae.scores(probe.leader, [None if t is None else t.leader_template() for t in stored])
        # the hand-made minutiae's term left at its floor: the order by grid and LEADER alone
        partial = [self.fuse(g, 0.0, s or 0.0) for g, s in zip(grid_cos, leader, strict=True)]
        keep = sorted(range(len(stored)), key=lambda i: -partial[i])[: max(top_k, self.own_minutiae_shortlist)]
        own = self.minutiae.scores(probe.own, [stored[i] for i in keep])
        scored = [(i, self.fuse(grid_cos[i], 0.0 if m is None else m, leader[i] or 0.0))
                  for i, m in zip(keep, own, strict=True)]
        return sorted(scored, key=lambda p: -p[1])[:top_k]

    def _by_sketch(self, grid_cos: Sequence[float], probe: MinutiaeProbe, sketches: Sequence[Sketch | None],
                   keep: int) -> list[int]:
        """The positions of the `keep` best candidates by grid cosine fused with the sketch score, the
        sketch standing in for the compared set's full score (and the other set's left at its floor)."""
        compared = probe.compared
        scores = sketch_scores(sketch_of(compared.stacked, every_row=True), compared.views, sketches)
        if probe.leader is None:
            order = [self.fuse(g, float(s)) for g, s in zip(grid_cos, scores, strict=True)]
        else:
            order = [self.fuse(g, 0.0, float(s)) for g, s in zip(grid_cos, scores, strict=True)]
        return sorted(range(len(order)), key=lambda i: -order[i])[:keep]

    # --- every pair of a set (calibration, evaluation, release) ---------------------------------------

    def all_pairs(self, embeddings: Sequence[Embedding],
                  probe_minutiae: Sequence[MinutiaeTemplate | None] | None = None) -> np.ndarray:
        """`cos[probe, enrolled]` for every image as a probe against every image enrolled, exactly as a
        verify of that probe against that one enrolled template would score it (before `to_score`).
        `probe_minutiae`: each image's minutiae as a probe brings them (found afresh, perhaps by the card's
        probe network), against `embeddings`' as the gallery stores them; without it, each pair's minutiae
        are compared once, the earlier print as the probe."""
        views = np.stack([e.views for e in embeddings])
        view_cos = self.view_cosines(views, views[:, 0])
        grids = [e.dense for e in embeddings]
        if self.grid is None or any(g is None for g in grids):
            return view_cos
        stacked = torch.from_numpy(np.stack(grids))  # type: ignore[arg-type]
        out: np.ndarray = self.grid_cosines(stacked, stacked, torch.from_numpy(view_cos)).numpy()
        minutiae = [e.minutiae for e in embeddings]
        if not self.fuses_minutiae or any(m is None for m in minutiae):
            return out
        probes = None if probe_minutiae is None else list(probe_minutiae)
        if probes is not None and any(p is None for p in probes):
            raise ValueError("every probe needs minutiae when the enrolled prints have them")
        own = np.zeros_like(out)
        if self.minutiae_weight > 0:
            own = self.minutiae.all_pairs(minutiae) if probes is None else self.minutiae.cross_pairs(probes, minutiae)  # type: ignore[arg-type]
        leader = np.zeros_like(out)
        if self.leader_weight > 0:
            sets = [m.leader_template() for m in minutiae]  # type: ignore[union-attr]
            if any(s is None for s in sets):
                raise ValueError("the model fuses LEADER's minutiae but a print has none")
            if probes is None:
                leader = self.minutiae.all_pairs(sets)  # type: ignore[arg-type]
            else:
                found = [p.leader_template() for p in probes]  # type: ignore[union-attr]
                if any(s is None for s in found):
                    raise ValueError("the model fuses LEADER's minutiae but a probe has none")
                leader = self.minutiae.cross_pairs(found, sets)  # type: ignore[arg-type]
        out = self.fuse(out, own, leader)
        return out
