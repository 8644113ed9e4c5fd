"""Comparing two sets of minutiae cylinders: local similarity assignment with relaxation (LSA-R).

Every cylinder of one print is compared with every cylinder of the other (a normalised distance over
the cells valid in both); the pairs are then assigned one-to-one to maximise the summed similarity (so
a noisy print's many spurious minutiae cannot all pair with the other print's few strong ones), and
the assigned pairs are relaxed against each other: a pair keeps its similarity only if the other pairs
agree with it on distances and angles (one rigid-ish placement). The score is the mean of the pairs
that held up best. Parameters are the MCC paper's except where a comment says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import linear_sum_assignment
from threadpoolctl import threadpool_limits

from fingerprint.model.minutiae.cylinders import CELLS, Cylinders, build_many
from fingerprint.model.minutiae.extract import MASK_CELL_PX
from fingerprint.model.minutiae.template import MinutiaeTemplate

_MIN_PAIRS, MAX_PAIRS, _MU_P, _TAU_P = 4, 12, 20.0, 0.4
MIN_COMMON_SHARE = 0.6  # of a cylinder's disc valid in both, or the pair is not comparable
_MAX_ANGLE = math.pi / 2  # directions further apart than this cannot be the same minutia
_RELAXATION_STEPS, _RELAXATION_WEIGHT = 5, 0.5
# px and radians two pairs may disagree by and stay compatible: the paper's 5 px is too strict for the
# distortion of the held-out copies; 8 px chosen there (model card)
_RHO_DISTANCE, _RHO_ANGLE = 8.0, math.pi / 12
_DISC_CELLS = math.pi * (CELLS / 2) ** 2
_TURN = 2 * math.pi


def one_blas_thread() -> None:
    """Numpy's BLAS on one thread, for the whole process (OpenBLAS's count is global). Comparing cylinders
    is products of matrices of a few dozen rows, where a second BLAS thread only adds hand-offs, and
    where the other core is busy (the service's extraction and inference threads, any other job) it
    waits for it: the probe against one template's cylinders took 5.5 ms with two threads and 0.58 ms
    with one beside another job on this 2-core machine (docs/experiments.md)."""
    threadpool_limits(limits=1, user_api="blas")


def _sigmoid(v: np.ndarray | float, mu: float, tau: float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(np.clip(-tau * (np.asarray(v) - mu), -50, 50))))


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles to [-pi, pi]. By the nearest whole turn: numpy's float32 remainder is ~25x slower, and was a
    tenth of identify's minutiae comparisons."""
    return np.asarray(a - _TURN * np.rint(a / _TURN))


def local_similarities(a: Cylinders, bs: Sequence[Cylinders]) -> np.ndarray:
    """(n_a, sum of their n_b) similarities in [0, 1] of `a`'s cylinders against each of `bs`'s, side by
    side; 0 for pairs that cannot be compared. All of `bs` at once: identify compares a probe with 64
    candidates, and per candidate the arithmetic after the products of matrices was a third of the
    comparison. The products stay one per candidate: a product's last bits depend on its width, and
    verify must give a template the score identify gave it."""
    width = sum(len(b.values) for b in bs)
    if len(a.values) == 0 or width == 0:
        return np.zeros((len(a.values), width), np.float32)
    products = [(a.energy @ b.valid_cells.T, a.valid_cells @ b.energy.T, a.values @ b.values.T,
                 a.valid_cells @ b.valid_cells.T) for b in bs]
    # a's squared norm over the cells valid in both, b's, their cross term, the cells valid in both
    norm_a2, norm_b2, cross, common = (np.concatenate([p[k] for p in products], 1) for k in range(4))
    b_minutiae = np.concatenate([b.minutiae for b in bs])
    b_usable = np.concatenate([b.usable for b in bs])
    norm_a, norm_b = np.sqrt(norm_a2), np.sqrt(norm_b2)
    distance = np.sqrt(np.clip(norm_a2 + norm_b2 - 2 * cross, 0.0, None))
    lam = 1.0 - distance / np.maximum(norm_a + norm_b, 1e-9)
    angles = np.abs(_wrap(a.minutiae[:, None, 2] - b_minutiae[None, :, 2]))
    ok = ((common >= MIN_COMMON_SHARE * _DISC_CELLS) & (norm_a + norm_b > 0) & (angles <= _MAX_ANGLE)
          & a.usable[:, None] & b_usable[None, :])
    return np.where(ok, lam, 0.0).astype(np.float32)


def _pair_geometry(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dx = p[None, :, 0] - p[:, None, 0]
    dy = p[None, :, 1] - p[:, None, 1]
    distance = np.hypot(dx, dy)
    turn = _wrap(p[:, None, 2] - p[None, :, 2])
    radial = _wrap(p[:, None, 2] - np.arctan2(dy, dx))
    return distance, turn, radial


def pairs_averaged(n: np.ndarray) -> np.ndarray:
    """How many of the best pairs a score averages, where the smaller print has n minutiae (elementwise)."""
    return (_MIN_PAIRS + np.round(_sigmoid(n, _MU_P, _TAU_P) * (MAX_PAIRS - _MIN_PAIRS))).astype(np.int64)


def consolidate(sims: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """LSA-R: the global score in [0, 1] of (n_a, n_b) local similarities of minutiae `a`, `b`."""
    na, nb = sims.shape
    if na == 0 or nb == 0:
        return 0.0
    n_pairs = int(pairs_averaged(np.asarray(min(na, nb))))
    ia, ib = linear_sum_assignment(sims, maximize=True)
    # pairs that cannot be compared are not pairs; left in, the relaxation would lift them from zero
    comparable = sims[ia, ib] > 0
    ia, ib = ia[comparable], ib[comparable]
    initial = sims[ia, ib].astype(np.float64)
    n_relax = len(initial)
    if n_relax < 2:  # one comparable pair is not a placement: it counts as one of the n_pairs
        return float(initial.sum()) / n_pairs
    da, ta, ra = _pair_geometry(a[ia])
    db, tb, rb = _pair_geometry(b[ib])
    rho = (_sigmoid(np.abs(da - db), _RHO_DISTANCE, -8.0 / 5.0) * _sigmoid(np.abs(_wrap(ta - tb)), _RHO_ANGLE, -30.0)
           * _sigmoid(np.abs(_wrap(ra - rb)), _RHO_ANGLE, -30.0))
    np.fill_diagonal(rho, 0.0)
    lam = initial
    for _ in range(_RELAXATION_STEPS):
        lam = _RELAXATION_WEIGHT * lam + (1 - _RELAXATION_WEIGHT) * (rho @ lam) / (n_relax - 1)
    efficiency = lam / initial
    best = np.argsort(-efficiency)[:n_pairs]
    return float(lam[best].mean())


@dataclass(frozen=True)
class Probe:
    """A probe's cylinders: with its minutiae's own directions (`own`), and stacked with every direction
    turned by each of the matcher's offsets (a cylinder's cells turn with its minutia's direction, so a
    direction 5 degrees off already costs a print about a third of its score against itself; model card,
    "3.6.0"). Stacked, a template is compared with all of them in one product of matrices."""

    own: Cylinders
    stacked: Cylinders  # the own cylinders, then each offset's, row blocks of len(own.minutiae)
    views: int  # 1 + the number of offsets


def _stack(cylinders: list[Cylinders]) -> Cylinders:
    return Cylinders(*(np.concatenate([getattr(c, f.name) for c in cylinders]) for f in fields(Cylinders)))


class MinutiaeMatcher:
    """Scores a probe's minutiae against templates' minutiae; the probe's cylinders are built once.
    `direction_offsets` (degrees, the card's `minutiae_direction_offsets`): each pair of minutiae is
    compared with the probe's direction as found and turned by each offset, and keeps the best."""

    def __init__(self, mask_cell_px: float = MASK_CELL_PX, direction_offsets: Sequence[float] = ()) -> None:
        self.mask_cell_px = mask_cell_px
        self.direction_offsets = tuple(math.radians(d) for d in direction_offsets)

    def cylinders_of(self, templates: Sequence[MinutiaeTemplate]) -> list[Cylinders]:
        return build_many([(t.points, t.foreground) for t in templates], self.mask_cell_px)

    def probe(self, template: MinutiaeTemplate) -> Probe:
        return self.probes([template])[0]

    def probes(self, templates: Sequence[MinutiaeTemplate]) -> list[Probe]:
        """`probe` of each template, every view of every one built together (a build's fixed cost is most of it)."""
        turned: list[tuple[np.ndarray, np.ndarray]] = []
        for template in templates:
            turned.append((template.points, template.foreground))
            for offset in self.direction_offsets:
                points = template.points.copy()
                points[:, 2] = np.remainder(points[:, 2] + offset, 2 * math.pi)
                turned.append((points, template.foreground))
        built = build_many(turned, self.mask_cell_px)
        n = 1 + len(self.direction_offsets)
        views = [built[k : k + n] for k in range(0, len(built), n)]
        return [Probe(v[0], _stack(v) if n > 1 else v[0], n) for v in views]

    def score(self, probe: Probe, template: Cylinders) -> float:
        return self._scores_of(probe, [template])[0]

    def _scores_of(self, probe: Probe, built: list[Cylinders]) -> list[float]:
        """The probe against each template's cylinders, each pair of minutiae at the best of the probe's
        directions."""
        counts = [len(c.minutiae) for c in built]
        sims = local_similarities(probe.stacked, built).reshape(probe.views, len(probe.own.minutiae), sum(counts))
        blocks = np.split(sims.max(0), np.cumsum(counts)[:-1], axis=1)
        return [consolidate(block, probe.own.minutiae, c.minutiae) for block, c in zip(blocks, built, strict=True)]

    def scores(self, probe: MinutiaeTemplate | Probe, templates: list[MinutiaeTemplate | None]) -> list[float | None]:
        """The probe (its minutiae, or their cylinders built by this matcher's `probe`) against each
        template; None where a template has no minutiae stored."""
        cylinders = probe if isinstance(probe, Probe) else self.probe(probe)
        built = self.cylinders_of([t for t in templates if t is not None])
        found = iter(self._scores_of(cylinders, built) if built else [])
        return [None if t is None else next(found) for t in templates]

    def cross_pairs(self, probes: list[MinutiaeTemplate], enrolled: list[MinutiaeTemplate]) -> np.ndarray:
        """(n, n) scores[p, e] of probe p's minutiae against enrolled e's, where each print was found twice:
        as a probe and as enrolled (by different networks); 1 on the diagonal, as `all_pairs`."""
        cylinders = self.cylinders_of(enrolled)
        scores = np.eye(len(probes))
        for p, probe in enumerate(probes):
            built = self.probe(probe)
            for e, template in enumerate(cylinders):
                if e != p:
                    scores[p, e] = self.score(built, template)
        return scores

    def all_pairs(self, templates: list[MinutiaeTemplate]) -> np.ndarray:
        """(n, n) scores of every pair, each scored once with the earlier print as the probe (the score is
        symmetric up to ties, and up to the probe's turned directions when the matcher has offsets); 1 on
        the diagonal."""
        probes = self.probes(templates)
        n = len(probes)
        scores = np.eye(n)
        for i in range(n - 1):
            later = self._scores_of(probes[i], [p.own for p in probes[i + 1 :]])  # one product for all of them
            scores[i, i + 1 :] = scores[i + 1 :, i] = later
        return scores
