"""The settings sweep at a toy size against real server processes (no timing asserts): a row per batching
setting (a batch of one only once: it never waits) and per queue size, each answered."""

from __future__ import annotations

from lab.benchmarks.sweep import main
from tests.conftest import free_port_pair


def test_sweep_measures_every_setting() -> None:
    report = main(["--gallery", "30", "--settle", "0", "--seconds", "1", "--clients", "2", "--sequential", "2",
                   "--batch", "1", "4", "--wait", "0", "2", "--pool", "2", "8", "--port", str(free_port_pair())])
    batching, admission = report["batching"], report["admission"]
    assert [(r["max_batch_size"], r["max_batch_wait_ms"]) for r in batching] == [(1, 0.0), (4, 0.0), (4, 2.0)]  # type: ignore[union-attr, index]
    assert all(r["saturated_rps"] > 0 and r["one_client_p50_ms"] > 0 for r in batching)  # type: ignore[union-attr, index, operator]
    assert [r["max_pool_size"] for r in admission] == [2, 8]  # type: ignore[union-attr, index]
    for row in admission:  # type: ignore[union-attr]
        assert not row["transport_errors"] and row["answered"].get(200, 0) > 0  # type: ignore[index]
        assert set(row["answered"]) <= {200, 503} and row["queue_depth_max"] <= row["max_pool_size"]  # type: ignore[index]
