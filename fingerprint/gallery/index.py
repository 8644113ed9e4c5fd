"""The in-memory search index: every template of the current model, searched exactly.

Embeddings are float16 rows of one growable matrix (512 bytes a template at d=256), scanned exactly
(gallery/scan.py). With dense matching each row also has an int8 descriptor grid (6.4 KB), which scores
verify and identify's shortlist (model/dense.py); with minutiae, each row's minutiae and their sketch
(gallery/minutiae_column.py) rank the best of those and re-score the last few. Every score and shortlist
size comes from the model's `Comparator` (model/comparator.py): the index only finds candidates. A lock
makes mutations and searches safe from several threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from fingerprint.gallery.engine_shortlist import EngineShortlist
from fingerprint.gallery.minutiae_column import MinutiaeColumn, decoded
from fingerprint.gallery.scan import RESCORE_MARGIN, best_among, best_rows
from fingerprint.gallery.store import Template
from fingerprint.model.comparator import Comparator, MinutiaeProbe
from fingerprint.model.dense import GridMatcher
from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.minutiae.sketch import Sketch

_ADDED_KEPT = 100_000  # an estimator that samples scores needs no more of a burst of additions


@dataclass(frozen=True)
class Hit:
    template_id: str
    subject_id: str
    finger: str | None
    score: float  # cosine (or dense grid) similarity mapped to [0, 1]


@dataclass(frozen=True)
class StoredRows:
    """Some of the index's rows, copied (gallery/impostor_pairs.py scores them outside the lock)."""

    template_ids: list[str]
    subjects: list[str]
    vectors: torch.Tensor  # (n, D) float32
    grids: torch.Tensor | None  # (n, C, H, W) int8
    minutiae: list[bytes | None]  # as stored


class GalleryIndex:
    def __init__(self, dim: int, comparator: Comparator | None = None, initial_capacity: int = 1024,
                 engine: EngineShortlist | None = None) -> None:
        """`engine`: identify's first stage from a vector engine instead of the in-memory scan."""
        self.dim = dim
        self.comparator = comparator or Comparator(GridMatcher())
        self.engine = engine
        self._matrix = torch.zeros(initial_capacity, dim, dtype=torch.float16)
        self._grids: torch.Tensor | None = None  # (capacity, C, H, W) int8 once a grid is added
        self._minutiae = MinutiaeColumn()
        self._size = 0
        self._template_ids: list[str] = []
        self._subjects: list[str] = []
        self._fingers: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._rows_of_subject: dict[str, set[int]] = {}
        self._added: list[str] = []  # since the impostor estimator last drained them (gallery/impostors.py)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    @property
    def bytes_per_template(self) -> int:
        grid = 0 if self._grids is None else int(np.prod(self._grids.shape[1:]))
        return self.dim * 2 + grid + self._minutiae.nbytes // max(1, self._size)

    def add_template(self, t: Template) -> None:
        self.add(t.meta.template_id, t.meta.subject_id, t.meta.finger, t.embedding, t.dense, t.minutiae)

    def add(self, template_id: str, subject_id: str, finger: str | None, embedding: np.ndarray,
            dense: np.ndarray | None = None, minutiae: MinutiaeTemplate | None = None) -> None:
        with self._lock:
            if template_id in self._row_of:
                return
            if self._size == self._matrix.shape[0]:
                capacity = max(1024, self._size * 2)
                self._matrix = _grown(self._matrix, capacity, self._size)
                if self._grids is not None:
                    self._grids = _grown(self._grids, capacity, self._size)
            row = self._size
            self._matrix[row] = torch.from_numpy(np.asarray(embedding, dtype=np.float32)).to(torch.float16)
            if dense is not None:
                if self._grids is None:
                    self._grids = torch.zeros((self._matrix.shape[0], *dense.shape), dtype=torch.int8)
                self._grids[row] = torch.from_numpy(np.array(dense, dtype=np.int8))  # a copy: store rows are read-only
            self._template_ids.append(template_id)
            self._subjects.append(subject_id)
            self._fingers.append(finger)
            self._minutiae.append(minutiae)
            self._row_of[template_id] = row
            self._rows_of_subject.setdefault(subject_id, set()).add(row)
            self._size += 1
            if len(self._added) < _ADDED_KEPT:
                self._added.append(template_id)
            if self.engine is not None:
                self.engine.added(template_id)

    def remove_subject(self, subject_id: str) -> int:
        with self._lock:
            rows = sorted(self._rows_of_subject.pop(subject_id, set()), reverse=True)
            for row in rows:
                self._remove_row(row)
            return len(rows)

    def remove_template(self, template_id: str) -> bool:
        with self._lock:
            row = self._row_of.get(template_id)
            if row is None:
                return False
            subject = self._subjects[row]
            rows = self._rows_of_subject[subject]
            rows.discard(row)
            if not rows:
                del self._rows_of_subject[subject]
            self._remove_row(row)
            return True

    def _remove_row(self, row: int) -> None:
        last = self._size - 1
        tid = self._template_ids[row]
        del self._row_of[tid]
        if self.engine is not None:
            self.engine.removed(tid)
        self._minutiae.move_last_to(row)
        if row != last:
            # move the last row into the hole so the matrix stays dense
            moved = self._template_ids[last]
            self._matrix[row] = self._matrix[last]
            if self._grids is not None:
                self._grids[row] = self._grids[last]
            self._template_ids[row] = moved
            self._subjects[row] = self._subjects[last]
            self._fingers[row] = self._fingers[last]
            self._row_of[moved] = row
            rows = self._rows_of_subject[self._subjects[row]]
            rows.discard(last)
            rows.add(row)
        self._template_ids.pop()
        self._subjects.pop()
        self._fingers.pop()
        self._size -= 1

    def drain_added(self) -> list[str]:
        """The templates added since the last call (at most _ADDED_KEPT of them)."""
        with self._lock:
            added, self._added = self._added, []
            return added

    def rows_of(self, template_ids: list[str]) -> StoredRows:
        """Copies of those of `template_ids` still stored, in their order, taken together under the lock."""
        with self._lock:
            rows = [r for r in (self._row_of.get(t) for t in template_ids) if r is not None]
            return StoredRows([self._template_ids[r] for r in rows], [self._subjects[r] for r in rows],
                              self._matrix[rows].float(), None if self._grids is None else self._grids[rows],
                              [self._minutiae.stored[r] for r in rows])

    def has_subject(self, subject_id: str) -> bool:
        return subject_id in self._rows_of_subject

    def search(self, probe: np.ndarray, top_k: int) -> list[Hit]:
        return self.search_batch(probe[None, :], top_k)[0]

    def search_batch(self, probes: np.ndarray, top_k: int) -> list[list[Hit]]:
        """Exact top-k by cosine (gallery/scan.py) of the first stage's candidates."""
        found = self._engine_candidates(probes, top_k)
        with self._lock:
            return [self._hits(scores, rows) for scores, rows in self._first_stage(probes, top_k, found)]

    def _engine_candidates(self, probes: np.ndarray, k: int) -> list[list[str]] | None:
        # asked outside the lock: a network round trip must not hold up enrolments and other searches
        return None if self.engine is None else self.engine.candidates(probes, k + RESCORE_MARGIN)

    def _first_stage(self, probes: np.ndarray, k: int, found: list[list[str]] | None) -> list[tuple[list[float], list[int]]]:
        """Each probe's best k rows by exact cosine: over the whole matrix, or over the engine's `found`
        that are still indexed plus what the engine does not have yet. Call with the lock held."""
        if found is None:
            return best_rows(self._matrix, self._size, probes, k)
        assert self.engine is not None
        unwritten = [r for r in (self._row_of.get(t) for t in self.engine.unwritten()) if r is not None]
        return [best_among(self._matrix, [r for r in (self._row_of.get(t) for t in ids) if r is not None] + unwritten,
                           probe, k) for probe, ids in zip(probes, found, strict=True)]

    def template_ids(self) -> list[str]:
        with self._lock:
            return list(self._template_ids)

    def vectors_of(self, template_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """The search vectors (float32) of those of `template_ids` still indexed, and their ids."""
        with self._lock:
            present = [t for t in template_ids if t in self._row_of]
            rows = [self._row_of[t] for t in present]
            return present, self._matrix[rows].float().numpy()

    def search_views(self, views: np.ndarray, top_k: int, dense: np.ndarray | None = None,
                     minutiae: MinutiaeTemplate | MinutiaeProbe | None = None) -> list[Hit]:
        """Top-k for a probe given as (K, D) views (and its int8 grid when the model has one).

        The scan ranks the whole gallery by the centred view (views[0]) alone, so a search costs the
        same as with one vector; the comparator's view shortlist of it is re-scored exactly with every
        view, and with a grid the best of those (its grid shortlist) are scored on the descriptor grids,
        which decide the order and the scores. With minutiae, the comparator's minutiae shortlist (or
        top_k, if more) by grid is re-scored with them and returned in that order. A template outside
        the shortlists is not re-scored: at 1M templates the scan keeps 0.1 % of the gallery.
        """
        c = self.comparator
        views = np.atleast_2d(views)
        if len(views) == 1 and dense is None:
            return self.search(views[0], top_k)
        k = max(top_k, c.view_shortlist)
        found = self._engine_candidates(views[:1], k)
        with self._lock:
            rows = self._first_stage(views[:1], k, found)[0][1]
            if not rows:
                return []
            best = c.view_cosines_torch(self._matrix[rows].float(),
                                        torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32)))
            if dense is None or self._grids is None:
                scores, order = torch.topk(best, min(top_k, len(rows)))
                return self._hits(scores.tolist(), [rows[i] for i in order.tolist()])
            view_best, order = torch.topk(best, min(max(top_k, c.grid_shortlist), len(rows)))
            rows = [rows[i] for i in order.tolist()]
            grids = self._grids[rows]  # indexing copies: the rows are safe to score outside the lock
            names = [(self._template_ids[r], self._subjects[r], self._fingers[r]) for r in rows]
            stored = [self._minutiae.stored[r] for r in rows]
        # the grid comparison is the costly part: done outside the lock
        probe_grid = torch.from_numpy(np.asarray(dense, dtype=np.int8))[None]
        best_grid, grid_cos = c.grid_shortlist_cosines(probe_grid, grids, view_best, max(top_k, c.minutiae_shortlist))
        if c.fuses_minutiae and minutiae is not None:
            parsed = decoded([stored[i] for i in best_grid])
            sketches = self._sketches_of([names[i][0] for i in best_grid], parsed) if c.sketch_shortlist else None
            ranked = c.ranked(grid_cos.tolist(), minutiae, parsed, top_k, sketches)
            hits = [(names[best_grid[j]], c.to_score(sc)) for j, sc in ranked]
            return [Hit(name[0], name[1], name[2], sc) for name, sc in hits]
        return [Hit(names[i][0], names[i][1], names[i][2], c.to_score(sc))
                for sc, i in zip(grid_cos[:top_k].tolist(), best_grid[:top_k], strict=True)]

    def _sketches_of(self, template_ids: list[str], templates: list[MinutiaeTemplate | None]) -> list[Sketch | None]:
        """The sketches of these templates (`templates` their minutiae): those not built yet are built
        outside the lock and kept, unless the template left the index meanwhile."""
        with self._lock:
            rows = [self._row_of.get(t) for t in template_ids]
            found = [None if r is None else self._minutiae.sketches[r] for r in rows]
        missing = [k for k, (f, t) in enumerate(zip(found, templates, strict=True)) if f is None and t is not None]
        if missing:
            for k, sketch in zip(missing, self.comparator.sketches([templates[k] for k in missing]), strict=True):
                found[k] = sketch
            self._keep_sketches({template_ids[k]: found[k] for k in missing})
        return found

    def _keep_sketches(self, built: dict[str, Sketch | None]) -> None:
        with self._lock:
            for template_id, sketch in built.items():
                row = self._row_of.get(template_id)
                if row is not None:
                    self._minutiae.keep(row, sketch)

    def warm_sketches(self, limit: int) -> int:
        """Build the sketches not built yet of up to `limit` more rows (identify builds the rest on first
        use); how many rows were visited, 0 once all were. The service calls it in the background after
        loading the gallery."""
        if not self.comparator.fuses_minutiae or not self.comparator.sketch_shortlist:
            return 0
        with self._lock:
            rows, visited = self._minutiae.unwarmed(limit)
            todo = [(self._template_ids[r], self._minutiae.stored[r]) for r in rows]
        if todo:
            built = self.comparator.sketches(decoded([m for _, m in todo]))
            self._keep_sketches(dict(zip([t for t, _ in todo], built, strict=True)))
        return visited

    def _hits(self, scores: list[float], rows: list[int]) -> list[Hit]:
        return [Hit(self._template_ids[r], self._subjects[r], self._fingers[r], self.comparator.to_score(sc))
                for sc, r in zip(scores, rows, strict=True)]

    def best_for_subject(self, probe: np.ndarray, subject_id: str, dense: np.ndarray | None = None,
                         minutiae: MinutiaeTemplate | MinutiaeProbe | None = None) -> Hit | None:
        """The subject's best-matching template for a probe given as (D,) or (K, D) views, scored
        on the descriptor grids when the probe has one."""
        with self._lock:
            rows = sorted(self._rows_of_subject.get(subject_id, ()))
            if not rows:
                return None
            c = self.comparator
            views = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(probe), dtype=np.float32))
            sims = c.view_cosines_torch(self._matrix[rows].float(), views)
            if dense is not None and self._grids is not None:
                probe_grid = torch.from_numpy(np.asarray(dense, dtype=np.int8))[None]
                sims = c.grid_cosines(probe_grid, self._grids[rows], sims[None])[0]
            stored = [self._minutiae.stored[r] for r in rows]
            names = [(self._template_ids[r], self._subjects[r], self._fingers[r]) for r in rows]
        scores = sims.tolist()
        if c.fuses_minutiae and minutiae is not None and dense is not None:
            scores = c.fused(scores, minutiae, decoded(stored))
        i = int(np.argmax(scores))
        return Hit(names[i][0], names[i][1], names[i][2], c.to_score(scores[i]))


def _grown(rows: torch.Tensor, capacity: int, used: int) -> torch.Tensor:
    out = torch.zeros((capacity, *rows.shape[1:]), dtype=rows.dtype)
    out[:used] = rows[:used]
    return out
