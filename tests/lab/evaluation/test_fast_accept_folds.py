"""The FAST_ACCEPT simulation: fast scores stand only where they clear margin x threshold, LEADER's elsewhere;
identify re-scores a probe when its best is not clear or a second finger reaches the threshold."""

from __future__ import annotations

import numpy as np

from lab.evaluation.fast_accept_folds import SetScores, figures, keeps_leaders

FINGERS = [f for f in "abcd" for _ in range(3)]
IMPRESSIONS = [1, 2, 3] * 4


def _scores(genuine: float, impostor: float) -> np.ndarray:
    same = np.array(FINGERS)[:, None] == np.array(FINGERS)[None, :]
    return np.where(same, genuine, impostor)


def test_clear_fast_answers_stand_and_doubtful_ones_take_leaders_score() -> None:
    leader = _scores(0.30, 0.02)
    fast = _scores(0.30, 0.02)
    fast[2, 0] = 0.05  # a genuine pair the fast network doubts (below 1.1 x 0.1): LEADER's 0.30 is used
    s = SetScores(leader, fast, FINGERS, IMPRESSIONS, floor=0.1)
    at = figures(s, 1.1)
    assert s.threshold == 0.1  # the floor: the set's own impostors score lower
    assert at["fnmr"] == 0.0 and at["fast_genuine"] < 1.0 and at["fast_impostor"] == 0.0
    assert figures(s, 0.0)["fnmr"] > 0  # the fast network alone rejects that pair
    assert keeps_leaders(at, figures(s, np.inf))


def test_identify_with_two_fingers_above_the_threshold_is_rescored() -> None:
    leader = _scores(0.30, 0.02)
    fast = _scores(0.30, 0.02)
    fast[1, 9] = 0.5  # probe 1 (finger a) scores finger d's enrolled print highest on the fast network
    s = SetScores(leader, fast, FINGERS, IMPRESSIONS, floor=0.1)
    assert figures(s, 1.1)["rank1"] == 1.0  # its mate also reaches the threshold: LEADER decides
    assert figures(s, 0.0)["rank1"] < 1.0  # the fast network alone names the wrong finger
    assert figures(s, 1.1)["verify_fmr"] > 0  # as a verify that pair's fast score stands


def test_a_fast_score_far_below_the_threshold_stands_as_a_reject() -> None:
    leader = _scores(0.30, 0.02)
    fast = _scores(0.30, 0.02)
    fast[2, 0] = 0.03  # a genuine pair the fast network all but misses; LEADER finds it (0.30)
    s = SetScores(leader, fast, FINGERS, IMPRESSIONS, floor=0.1)
    lost = figures(s, 1.1, reject=0.5)  # 0.03 < 0.5 x 0.1: the fast reject stands, the pair is lost
    assert lost["fnmr"] > 0 and lost["fast_impostor"] == 1.0
    spared = figures(s, 1.1, reject=0.25)  # 0.03 is not below 0.025: LEADER decides it; impostors' 0.02 stand
    assert spared["fnmr"] == 0.0 and spared["fast_impostor"] == 1.0 and spared["fast_no_mate"] == 1.0
    none = figures(s, 1.1)  # no reject margin: every score below 1.1 x t is LEADER's
    assert none["fast_impostor"] == 0.0 and none["fast_no_mate"] == 0.0
