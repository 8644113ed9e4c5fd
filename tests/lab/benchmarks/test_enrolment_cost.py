"""The enrolment cost benchmark at a toy size, so that it breaks loudly, not silently (no timing asserts)."""

from __future__ import annotations

from pathlib import Path


def test_enrolment_cost_runs(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    from lab.benchmarks.enrolment_cost import main

    for n, image in enumerate(png_prints[0][:2]):
        (tmp_path / f"{n}.png").write_bytes(image)
    result = main([str(tmp_path), "--images", "2", "--threads", "1"])
    assert result["images"] == 2 and result["p50_ms"] > 0 and result["p50_with_nfiq2_ms"] > 0
