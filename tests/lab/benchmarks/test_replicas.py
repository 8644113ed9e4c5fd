"""The replicas benchmark at a toy size: two real replicas on a real PostgreSQL, writers enrolling on one
and erasing on the other; no erased subject is ever matched and every kept one is found on both."""

from __future__ import annotations

from lab.benchmarks.replicas import main


def test_replicas_benchmark_finds_no_erased_subject() -> None:
    report = main(["--writers", "2", "--per-writer", "4"])
    assert report["enrolled"] == 8 and report["erased"] == 6
    assert report["erased_subjects_matched"] == 0 and report["acknowledged_not_identifiable"] == 0
