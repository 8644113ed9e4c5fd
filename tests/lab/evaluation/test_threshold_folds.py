"""The tail factor's leave-one-sensor-out choice and the rates it is chosen on."""

from __future__ import annotations

from lab.benchmarks.gallery_growth import Attempt
from lab.evaluation.threshold_folds import choose, rates


def test_rates_count_genuine_misses_and_impostors_accepted_at_the_threshold() -> None:
    attempts = [Attempt("1_2", "1", True, 0.30), Attempt("1_3", "1", True, 0.05),
                Attempt("1_2", "2", False, 0.07), Attempt("1_2", "3", False, 0.02)]
    r = rates(attempts, 0.06)
    assert (r["fnmr"], r["fmr"], r["false_matches"], r["impostor_attempts"]) == (0.5, 0.5, 1, 2)


def _r(fmr: float, fnmr: float) -> dict[str, float]:
    return {"fmr": fmr, "fnmr": fnmr}


def test_a_set_is_judged_at_the_factor_the_other_sets_chose() -> None:
    results = {
        1.0: {"A": _r(0.004, 0.00), "B": _r(0.004, 0.00), "C": _r(0.000, 0.00)},
        3.0: {"A": _r(0.000, 0.02), "B": _r(0.001, 0.02), "C": _r(0.000, 0.01)},
        5.0: {"A": _r(0.000, 0.05), "B": _r(0.000, 0.03), "C": _r(0.000, 0.50)},
    }
    # without C: 1 misses the target on A and B, 3 holds it at the lower FNMR
    assert choose(results, 0.001, "C") == 3.0
    # without A: 3 and 5 hold it on B and C; 3 has the lower mean FNMR
    assert choose(results, 0.001, "A") == 3.0
    # the target held by none: the lowest mean FMR
    assert choose({1.0: {"A": _r(0.01, 0)}, 2.0: {"A": _r(0.005, 0.2)}}, 0.001, None) == 2.0
    # the factor shipped is the one every set chooses
    assert choose(results, 0.001, None) == 3.0
