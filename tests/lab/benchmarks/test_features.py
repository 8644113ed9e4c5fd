"""The feature-time benchmark on two prints, with and without the fast probe network (no timing asserts)."""

from __future__ import annotations

from pathlib import Path

from lab.benchmarks.features import main


def test_features_benchmark_times_each_mode(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    folder = tmp_path / "toy"
    folder.mkdir()
    for n, image in enumerate(png_prints[0][:2], start=1):
        (folder / f"1_{n}.png").write_bytes(image)
    report = main([str(folder), "--images", "2", "--fast-probes"])
    assert len(report) == 2 and any(key.endswith("fast probes") for key in report)
    for figures in report.values():
        assert figures["images"] == 2 and 0 < figures["p50_ms"] <= figures["p90_ms"]
