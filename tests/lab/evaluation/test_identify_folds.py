"""Identify's shortlist and enrolment's minimum: each set judged by the choice the other sets made, and
enrolment that skips an impression with too few minutiae enrols the finger's next one."""

from __future__ import annotations

import numpy as np

from fingerprint.model.embedder import Embedding
from fingerprint.model.minutiae import MinutiaeTemplate
from lab.benchmarks.growth_gallery import Print, enrolled_prints
from lab.evaluation.identify_folds import choose


def _row(rank1: float, wrong: float = 0.0) -> dict[str, float]:
    return {"rank1": rank1, "identify_named_wrong": wrong}


def test_each_set_gets_the_combination_the_other_sets_did_best_with() -> None:
    results = {(8, 0, 8, 64): {"A": _row(1.0), "B": _row(0.9), "C": _row(0.5)},
               (32, 10, 8, 64): {"A": _row(0.9), "B": _row(0.9), "C": _row(1.0)}}
    assert choose(results, "C") == (8, 0, 8, 64)  # C's own gain does not count for C
    assert choose(results, "A") == (32, 10, 8, 64)
    assert choose(results, None) == (32, 10, 8, 64)


def test_ties_go_to_fewer_wrong_names_then_the_cheaper_shortlists_then_the_lower_minimum() -> None:
    same = {"A": _row(1.0), "B": _row(0.9)}
    assert choose({(32, 0, 8, 64): same, (8, 0, 8, 64): same, (8, 10, 8, 64): same}, None) == (8, 0, 8, 64)
    assert choose({(32, 0, 32, 64): same, (32, 10, 8, 64): same, (32, 0, 16, 64): same}, None) == (32, 10, 8, 64)
    # the grid shortlist costs least of the three: it yields to the minutiae's shortlists, not to the minimum
    assert choose({(32, 0, 8, 256): same, (32, 10, 8, 64): same, (16, 0, 8, 256): same}, None) == (16, 0, 8, 256)
    assert choose({(32, 10, 8, 64): same, (32, 0, 8, 256): same}, None) == (32, 10, 8, 64)
    assert choose({(8, 0, 8, 64): {"A": _row(1.0, 0.1)}, (64, 12, 32, 256): {"A": _row(1.0, 0.0)}}, None) == (64, 12, 32, 256)


def _print(finger: str, impression: int, minutiae: int) -> Print:
    points = np.zeros((minutiae, 3), np.float32)
    found = MinutiaeTemplate(points, np.ones((4, 4), bool), points)
    return Print("S", finger, impression, Embedding(np.zeros((1, 4), np.float32), None, found), None)


def test_a_finger_enrols_its_first_impression_with_enough_minutiae_or_not_at_all() -> None:
    prints = [_print("1", 2, 30), _print("1", 1, 8), _print("2", 1, 12), _print("3", 1, 5), _print("3", 2, 9)]
    assert enrolled_prints(prints, 10) == {("S", "1"): 0, ("S", "2"): 2}
    assert enrolled_prints(prints, 0) == {("S", "1"): 1, ("S", "2"): 2, ("S", "3"): 3}
