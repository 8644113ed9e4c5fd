"""The search benchmark at toy sizes, with the real model (no timing asserts): the scan agrees with the
exact reference and identify's whole search, shortlists and minutiae included, ranks a real mate first."""

from __future__ import annotations

from lab.benchmarks.search import main


def test_search_benchmark_runs_every_part() -> None:
    report = main(["--sizes", "600", "--load-size", "40", "--threads", "1", "--identify-sizes", "150"])
    (scan,) = report["search"]  # type: ignore[misc]
    assert scan["templates"] == 600 and scan["recall_at_1"] >= 0.99 and scan["search_ms_p50"] > 0
    (identify,) = report["identify"]  # type: ignore[misc]
    assert identify["templates"] == 151 and identify["mate_ranked_first"] is True
    assert identify["identify_search_ms_p50"] > 0 and identify["bytes_per_template"] > 6400  # grid and minutiae
    assert set(identify["stages_ms_p50"]) == {"probe_preprocess", "probe_forward_pass", "search_before_minutiae",
                                              "probe_cylinders", "leader_on_probe"}
    assert all(ms > 0 for ms in identify["stages_ms_p50"].values())
    comparison = report["minutiae_comparison"]
    assert comparison["minutiae"] == 35 and comparison["build_ms_p50"] > 0 and comparison["compare_ms_p50"] > 0  # type: ignore[index]
    assert report["store_load"]["sqlite"]["templates"] == 40  # type: ignore[index]
