"""The auth-flood benchmark for a second against a real server (no timing asserts): strangers' keys are
answered 401 or 429, never served, and the legitimate client is served in both phases."""

from __future__ import annotations

from lab.benchmarks.auth_flood import main
from tests.conftest import free_port_pair


def test_auth_flood_benchmark_runs() -> None:
    report = main(["--seconds", "1", "--flood-connections", "4", "--flood-rps", "20", "--port", str(free_port_pair())])
    quiet, loud = report["legit_requests"]  # type: ignore[misc]
    assert quiet > 0 and loud > 0 and report["legit_p50_ms_flood"] > 0  # type: ignore[operator]
    assert report["flood_codes"] and set(report["flood_codes"]) <= {401, 429}  # type: ignore[arg-type]
