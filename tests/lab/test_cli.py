"""`python -m lab`: synthesis and evaluation end to end, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from lab.cli import main


def test_eval_reports_each_protocol_quality_against_nfiq2_and_the_nbis_baseline(tmp_path: Path) -> None:
    runner = CliRunner()
    prints = tmp_path / "prints"
    r = runner.invoke(main, ["synth", str(prints), "--fingers", "4", "--impressions", "5", "--seed", "7"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "eval"
    r = runner.invoke(main, ["eval", str(prints), "--baseline", "nbis", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "| prints | FVC (40g/6i)" in r.output and "| prints | all-pairs (40g/150i)" in r.output
    assert "Quality: all-pairs FNMR" in r.output and (out / "det.png").stat().st_size > 0
    [result] = json.loads((out / "report.json").read_text())["sets"]
    assert result["images"] == 20 and result["fingers"] == 4 and 0.0 <= result["all_pairs"]["eer"] <= 1.0
    assert result["nbis"]["fvc"]["genuine"] == 40 and result["nbis"]["all_pairs"]["impostor"] == 150
    # 1, 2 and 3 impressions enrolled, the same probes (impressions 4 and 5) for each
    assert [(e["enrolled"], e["probes"]) for e in result["enrollment"]] == [(1, 8), (2, 8), (3, 8)]
    quality = result["quality"]
    assert quality["fractions"] == [0.0, 0.05, 0.1, 0.2]
    for key in ("fnmr_discard_ours", "fnmr_discard_nfiq2"):  # nothing discarded: the same FNMR by either score
        assert len(quality[key]) == 4 and all(0.0 <= x <= 1.0 for x in quality[key])
    assert quality["fnmr_discard_ours"][0] == quality["fnmr_discard_nfiq2"][0]
    assert 0 < quality["nfiq2_mean"] <= 100 and -1.0 <= quality["spearman_vs_nfiq2"] <= 1.0
