"""How much enrolling several impressions per finger helps: the operator's cheapest accuracy lever.

The service verifies against the best of a subject's templates and identify ranks subjects by their
best template, so a finger enrolled with k impressions is matched by the best of k. Scored here on
one probe set for every k (the impressions after the largest k), at the served threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fingerprint.model.comparator import Comparator

ENROLLED = (1, 2, 3)


@dataclass(frozen=True)
class EnrollmentResult:
    enrolled: int  # impressions per finger
    probes: int
    fnmr: float  # genuine probes below the threshold
    fmr: float  # probe x other finger comparisons at or above it (best of that finger's k templates)
    rank1: float  # probes whose own finger scores highest


def _impression_ranks(fingers: list[str], impressions: list[int]) -> list[int]:
    """Each image's rank (1, 2, ...) among its finger's impressions by number."""
    order = sorted(range(len(fingers)), key=lambda i: impressions[i])
    ranks = [0] * len(fingers)
    seen: dict[str, int] = {}
    for i in order:
        seen[fingers[i]] = seen.get(fingers[i], 0) + 1
        ranks[i] = seen[fingers[i]]
    return ranks


@dataclass(frozen=True)
class BestOfK:
    genuine: np.ndarray  # (P,) each probe against its own finger's best template
    impostor: np.ndarray  # each probe against every other finger's best template
    rank1: float  # probes whose own finger scores highest


def best_of_k_scores(cos: np.ndarray, fingers: list[str], impressions: list[int], k: int,
                     probes_after: int) -> BestOfK:
    """Fingers enrolled with their first k impressions (by number), probes are the impressions
    numbered after `probes_after`; a probe scores against a finger by that finger's best template,
    as verify and identify do."""
    sim = Comparator.to_score(cos)
    names = sorted(set(fingers))
    ranks = _impression_ranks(fingers, impressions)
    probes = [i for i in range(len(fingers)) if ranks[i] > probes_after]
    own = np.array([names.index(fingers[p]) for p in probes], dtype=np.int64)
    best = np.full((len(probes), len(names)), -np.inf)
    for e in range(len(fingers)):
        if ranks[e] <= k:
            f = names.index(fingers[e])
            best[:, f] = np.maximum(best[:, f], sim[probes, e])
    rows = np.arange(len(probes))
    others = np.ones_like(best, dtype=bool)
    others[rows, own] = False
    rank1 = float((best.argmax(1) == own).mean()) if len(probes) else 0.0
    return BestOfK(best[rows, own], best[others & np.isfinite(best)], rank1)


def by_enrolled_impressions(cos: np.ndarray, fingers: list[str], impressions: list[int], threshold: float,
                            enrolled: tuple[int, ...] = ENROLLED) -> list[EnrollmentResult]:
    """`cos[probe, enrolled]` over every image of a set. Fingers enrolled with their first k impressions
    (by number); probes are every impression numbered after max(enrolled). Empty if no probe remains."""
    out = []
    for k in enrolled:
        scores = best_of_k_scores(cos, fingers, impressions, k, max(enrolled))
        if not len(scores.genuine):
            return []
        out.append(EnrollmentResult(k, len(scores.genuine), float((scores.genuine < threshold).mean()),
                                    float((scores.impostor >= threshold).mean()) if len(scores.impostor) else 0.0,
                                    scores.rank1))
    return out
