"""The gallery's own impostor scores: stored templates of different subjects scored against each other,
each pair exactly as verify would score the first as a probe (its enrolled view only) against the other.
`ImpostorEstimator` (gallery/impostors.py) samples them; the index only hands over copies of the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fingerprint.gallery.minutiae_column import decoded
from fingerprint.model.embedder import Embedding
from fingerprint.model.minutiae import MinutiaeTemplate

if TYPE_CHECKING:
    from fingerprint.gallery.index import GalleryIndex


class ImpostorPairs:
    def __init__(self, index: GalleryIndex) -> None:
        self._index = index

    def score_against(self, template_id: str, others: list[str]) -> list[float]:
        """`template_id` against each of `others` still stored that belongs to another subject."""
        c = self._index.comparator
        rows = self._index.rows_of([template_id, *others])
        if not rows.template_ids or rows.template_ids[0] != template_id:
            return []
        keep = [k for k in range(1, len(rows.template_ids)) if rows.subjects[k] != rows.subjects[0]]
        if not keep:
            return []
        cos = c.view_cosines_torch(rows.vectors[keep], rows.vectors[0][None])
        if rows.grids is not None:
            cos = c.grid_cosines(rows.grids[0][None], rows.grids[keep], cos[None])[0]
        scores = cos.tolist()
        probe = rows.minutiae[0]
        if c.fuses_minutiae and probe is not None:
            scores = c.fused(scores, c.probe(MinutiaeTemplate.from_bytes(probe)), decoded([rows.minutiae[k] for k in keep]))
        return [c.to_score(s) for s in scores]

    def score_among(self, template_ids: list[str]) -> list[float]:
        """Every pair of these templates still stored that belong to different subjects, scored once as
        `score_against` scores it (the earlier one as the probe): n templates give n(n-1)/2 impostor
        scores for n cylinder builds, where `score_against` builds one a score."""
        c = self._index.comparator
        rows = self._index.rows_of(template_ids)
        minutiae = decoded(rows.minutiae)
        lacking = [m is None or (c.leader_weight > 0 and m.leader_template() is None) for m in minutiae]
        if c.fuses_minutiae and (rows.grids is None or any(lacking)):  # all_pairs would not fuse: pair by pair
            return [s for k, t in enumerate(template_ids) for s in self.score_against(t, template_ids[k + 1 :])]
        vectors = rows.vectors.numpy()
        grids = [None] * len(vectors) if rows.grids is None else list(rows.grids.numpy())
        cos = c.all_pairs([Embedding(v[None], g, m) for v, g, m in zip(vectors, grids, minutiae, strict=True)])
        n, subjects = len(vectors), rows.subjects
        return [c.to_score(float(cos[i, j])) for i in range(n) for j in range(i + 1, n) if subjects[i] != subjects[j]]
