"""The engine benchmark at a toy size on embedded milvus-lite (no timing asserts): the engine's shortlist
is the in-memory scan's and ranks each mate where the scan does."""

from __future__ import annotations

import pytest

pytest.importorskip("milvus_lite", reason="the milvus extra is part of the dev install")

from lab.benchmarks.engine import main


def test_engine_benchmark_measures_recall_and_latency() -> None:
    report = main(["--sizes", "3000", "--probes", "12", "--shortlist", "256"])
    (row,) = report["sizes"]  # type: ignore[misc]
    assert row["templates"] == 3000 and row["engine_state"] == "synced"
    assert row["recall_at_shortlist_min"] >= 0.99 and row["mate_rank_equal"] is True and row["mate_in_shortlist"] == 1.0
    assert row["engine_ms_p50"] > 0 and row["memory_ms_p50"] > 0
