"""The load benchmark end to end at a toy size against real server processes (no timing asserts): every
phase runs and reports, the probe's enrolled mate is what identify names, and the soak is answered."""

from __future__ import annotations

import json

from lab.benchmarks.load import main
from tests.conftest import free_port_pair


def test_load_benchmark_runs_every_phase() -> None:
    report = main(["--gallery", "40", "--seconds", "1", "--clients", "2", "--sequential", "3", "--capacity", "4",
                   "--enrolls", "1", "--mated", "--overload-seconds", "1", "--port", str(free_port_pair())])
    assert report["gallery"] == 40 and report["startup_to_ready_s"] > 0  # type: ignore[operator]
    assert str(report["identify_answer"][0]["subject_id"]).startswith("mate")  # type: ignore[index]
    for label in ("saturation_batched", "saturation_batch1"):
        saturation = report[label]
        assert saturation["rps"] > 0 and set(json.loads(saturation["codes"])) == {"200"}  # type: ignore[index]
    assert report["batching_speedup"] is not None and report["enroll_sequential"]["p50_ms"] > 0  # type: ignore[index]
    assert sum(report["overload_2x_capacity"].values()) == 8  # type: ignore[union-attr]
    soak = report["overload_soak"]
    assert not soak["transport_errors"] and soak["codes"].get(200, 0) > 0  # type: ignore[index]
    assert soak["server_200"]["count"] > 0  # the server's own request histogram was read  # type: ignore[index]


def test_the_served_settings_come_from_env() -> None:
    """--env reaches the served processes: with the threshold at 0, identify names a candidate though no mate
    is enrolled (at the served default it names none among random templates)."""
    report = main(["--gallery", "20", "--seconds", "0.5", "--clients", "1", "--sequential", "2", "--capacity", "2",
                   "--enrolls", "0", "--port", str(free_port_pair()), "--env", "MATCH_THRESHOLD=0.0"])
    assert report["settings"] == {"MATCH_THRESHOLD": "0.0"}
    (named,) = report["identify_answer"]  # type: ignore[misc]
    assert not str(named["subject_id"]).startswith("mate")
