"""How much enrolling several impressions per finger helps: the operator's cheapest accuracy lever.

The service verifies against the best of a subject's templates and identify ranks subjects by their
best template, so a finger enrolled with k impressions is matched by the best of k. Scored here on
one probe set for every k (the impressions after the largest k), at the served threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fingerprint.model.evaluation.metrics import score_from_cosine

ENROLLED = (1, 2, 3)


@dataclass(frozen=True)
class EnrollmentResult:
    enrolled: int  # impressions per finger
    probes: int
    fnmr: float  # genuine probes below the threshold
    fmr: float  # probe x other finger comparisons at or above it (best of that finger's k templates)
    rank1: float  # probes whose own finger scores highest


def by_enrolled_impressions(cos: np.ndarray, fingers: list[str], impressions: list[int], threshold: float,
                            enrolled: tuple[int, ...] = ENROLLED) -> list[EnrollmentResult]:
    """`cos[probe, enrolled]` over every image of a set. Fingers enrolled with their first k impressions
    (by number); probes are every impression numbered after max(enrolled). Empty if no probe remains."""
    sim = score_from_cosine(cos)
    names = sorted(set(fingers))
    order = sorted(range(len(fingers)), key=lambda i: impressions[i])
    rank_in_finger: dict[int, int] = {}
    seen: dict[str, int] = {}
    for i in order:
        seen[fingers[i]] = seen.get(fingers[i], 0) + 1
        rank_in_finger[i] = seen[fingers[i]]
    probes = [i for i in range(len(fingers)) if rank_in_finger[i] > max(enrolled)]
    if not probes:
        return []
    own = np.array([names.index(fingers[p]) for p in probes])
    out = []
    for k in enrolled:
        best = np.full((len(probes), len(names)), -np.inf)
        for e in range(len(fingers)):
            if rank_in_finger[e] <= k:
                f = names.index(fingers[e])
                best[:, f] = np.maximum(best[:, f], sim[probes, e])
        rows = np.arange(len(probes))
        genuine = best[rows, own]
        others = np.ones_like(best, dtype=bool)
        others[rows, own] = False
        impostor = best[others & np.isfinite(best)]
        out.append(EnrollmentResult(k, len(probes), float((genuine < threshold).mean()),
                                    float((impostor >= threshold).mean()) if len(impostor) else 0.0,
                                    float((best.argmax(1) == own).mean())))
    return out
