"""Which pairs are compared: the FVC protocol and the all-pairs variant, plus closed-set identification."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pairs:
    genuine: np.ndarray  # (G, 2) indices into the image list
    impostor: np.ndarray  # (I, 2)


def fvc_pairs(fingers: list[str], impressions: list[int]) -> Pairs:
    """Genuine: all pairs of impressions of a finger. Impostor: first impression vs first impression."""
    n = len(fingers)
    genuine = [(i, j) for i in range(n) for j in range(i + 1, n) if fingers[i] == fingers[j]]
    first: dict[str, int] = {}
    for i in sorted(range(n), key=lambda k: impressions[k]):
        first.setdefault(fingers[i], i)
    firsts = sorted(first.values())
    impostor = [(a, b) for x, a in enumerate(firsts) for b in firsts[x + 1 :]]
    return Pairs(np.array(genuine, dtype=np.int64).reshape(-1, 2), np.array(impostor, dtype=np.int64).reshape(-1, 2))


def all_pairs(fingers: list[str]) -> Pairs:
    """Genuine as FVC; impostor: every pair of impressions of different fingers."""
    n = len(fingers)
    iu = np.triu_indices(n, k=1)
    labels = np.array(fingers)
    same = labels[iu[0]] == labels[iu[1]]
    both = np.stack(iu, axis=1)
    return Pairs(both[same], both[~same])


def identification_split(fingers: list[str], impressions: list[int]) -> tuple[list[int], list[int]]:
    """Gallery: each finger's first impression; probes: all other impressions."""
    first: dict[str, int] = {}
    for i in sorted(range(len(fingers)), key=lambda k: impressions[k]):
        first.setdefault(fingers[i], i)
    gallery = sorted(first.values())
    gallery_set = set(gallery)
    probes = [i for i in range(len(fingers)) if i not in gallery_set]
    return gallery, probes
