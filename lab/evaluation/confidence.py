"""How sure an EER is: intervals from resampling fingers, and ours against NBIS on the same resamples.

An FVC set has 10 fingers; its FVC-protocol EER rests on 45 impostor pairs, so one pair moves it by
2.2 points. Pairs of one finger are not independent, so the unit resampled is the finger (the subsets
bootstrap of Bolle, Ratha and Pankanti, Pattern Recognition 2004): each resample draws as many fingers as the set has, with
replacement; a genuine pair counts once per draw of its finger, an impostor pair once per draw of each
of its two fingers. Both matchers are scored on the same resamples, so the interval of their
difference is paired: it says whether a gap is larger than what the choice of fingers explains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fingerprint.calibration.metrics import eer

RESAMPLES = 2000
_SEED = 20261127


@dataclass(frozen=True)
class Scored:
    """One matcher's scores of a protocol's pairs, in the protocol's order."""

    genuine: np.ndarray  # (G,)
    impostor: np.ndarray  # (I,)


@dataclass(frozen=True)
class EerInterval:
    eer: float
    low: float  # 2.5th percentile over resamples
    high: float  # 97.5th
    # against a baseline scored on the same pairs (None without one): ours minus the baseline's EER
    difference_low: float | None = None
    difference_high: float | None = None
    not_worse_share: float | None = None  # share of resamples in which ours <= the baseline's


def _weighted_eer(genuine: np.ndarray, g_weights: np.ndarray, impostor: np.ndarray, i_weights: np.ndarray) -> float:
    """`metrics.eer` of the scores repeated by their integer weights."""
    return eer(np.repeat(genuine, g_weights), np.repeat(impostor, i_weights))


def finger_bootstrap(
    genuine_fingers: np.ndarray,
    impostor_fingers: np.ndarray,
    ours: Scored,
    baseline: Scored | None = None,
    resamples: int = RESAMPLES,
    seed: int = _SEED,
) -> EerInterval:
    """`genuine_fingers` (G,): each genuine pair's finger as an index 0..F-1; `impostor_fingers` (I, 2):
    each impostor pair's two fingers. Deterministic for a given seed."""
    fingers = int(max(genuine_fingers.max(initial=-1), impostor_fingers.max(initial=-1))) + 1
    rng = np.random.default_rng(seed)
    ours_eers, differences = [], []
    for _ in range(resamples):
        draws = np.bincount(rng.integers(0, fingers, fingers), minlength=fingers)
        g_w = draws[genuine_fingers]
        i_w = draws[impostor_fingers[:, 0]] * draws[impostor_fingers[:, 1]]
        if g_w.sum() == 0 or i_w.sum() == 0:  # too few distinct fingers drawn to measure anything
            continue
        mine = _weighted_eer(ours.genuine, g_w, ours.impostor, i_w)
        ours_eers.append(mine)
        if baseline is not None:
            differences.append(mine - _weighted_eer(baseline.genuine, g_w, baseline.impostor, i_w))
    point = eer(ours.genuine, ours.impostor)
    low, high = np.percentile(ours_eers, [2.5, 97.5]) if ours_eers else (point, point)
    if not differences:
        return EerInterval(point, float(low), float(high))
    d = np.array(differences)
    d_low, d_high = np.percentile(d, [2.5, 97.5])
    return EerInterval(point, float(low), float(high), float(d_low), float(d_high), float((d <= 0).mean()))


def pair_fingers(fingers: list[str], pairs: np.ndarray) -> np.ndarray:
    """(N, 2) image-index pairs -> (N, 2) finger indices (0..F-1 in order of first appearance)."""
    index: dict[str, int] = {}
    ids = np.array([index.setdefault(f, len(index)) for f in fingers], dtype=np.int64)
    return ids[pairs] if len(pairs) else np.zeros((0, 2), np.int64)


def interval_lines(sets: list[tuple[str, dict[str, EerInterval]]]) -> list[str]:
    """The report's table of intervals, one row per set and protocol."""
    lines = [
        f"EER 95 % intervals from {RESAMPLES:,} resamples of the fingers (evaluation/confidence.py); against NBIS on "
        "the same resamples: ours minus NBIS in points, and the share of resamples where ours is no worse",
        "| set | protocol | EER % [95 %] | ours - NBIS, points [95 %] | ours <= NBIS |",
        "|---|---|---|---|---|",
    ]
    for name, intervals in sets:
        for proto, iv in intervals.items():
            versus = "-"
            share = "-"
            if iv.difference_low is not None and iv.difference_high is not None and iv.not_worse_share is not None:
                versus = f"[{iv.difference_low * 100:+.2f}, {iv.difference_high * 100:+.2f}]"
                share = f"{iv.not_worse_share * 100:.0f} %"
            lines.append(
                f"| {name} | {proto} | {iv.eer * 100:.2f} [{iv.low * 100:.2f}, {iv.high * 100:.2f}] | {versus} | {share} |"
            )
    return lines
