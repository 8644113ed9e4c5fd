"""The `fingerprint` command works on a local gallery end to end, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fingerprint.cli import main
from lab.cli import main as lab_main
from tests.conftest import card_variant


def test_synth_enroll_identify_verify(tmp_path: Path) -> None:
    runner = CliRunner()
    prints = tmp_path / "prints"
    r = runner.invoke(lab_main, ["synth", str(prints), "--fingers", "3", "--impressions", "2", "--seed", "5"])
    assert r.exit_code == 0, r.output
    files = sorted(prints.glob("*.png"))
    assert [f.name for f in files] == ["00001_1.png", "00001_2.png", "00002_1.png", "00002_2.png",
                                       "00003_1.png", "00003_2.png"]
    data = str(tmp_path / "data")
    for finger in ("00001", "00002", "00003"):
        r = runner.invoke(main, ["enroll", str(prints / f"{finger}_1.png"), "--subject", f"s{finger}",
                                 "--data-dir", data])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)[0]["template_id"]
    r = runner.invoke(main, ["identify", str(prints / "00002_2.png"), "--threshold", "0", "--top-k", "3",
                             "--data-dir", data])
    assert r.exit_code == 0, r.output
    ranked = json.loads(r.stdout)["candidates"]
    assert ranked[0]["subject_id"] == "s00002" and len(ranked) == 3
    r = runner.invoke(main, ["verify", str(prints / "00002_2.png"), "--subject", "s00002", "--data-dir", data])
    same = json.loads(r.stdout)
    r = runner.invoke(main, ["verify", str(prints / "00002_2.png"), "--subject", "s00001", "--data-dir", data])
    other = json.loads(r.stdout)
    assert same["score"] > other["score"]
    r = runner.invoke(main, ["verify", str(prints / "00002_2.png"), "--subject", "nobody", "--data-dir", data])
    assert r.exit_code != 0 and "subject_not_found" in r.output


def test_calibrate_measures_thresholds_on_the_operators_prints_and_refuses_too_few(tmp_path: Path) -> None:
    runner = CliRunner()
    prints = tmp_path / "prints"
    # 50 fingers x 3 impressions: 11,025 impostor pairs, enough to measure FMR 0.1 %
    r = runner.invoke(lab_main, ["synth", str(prints), "--fingers", "50", "--impressions", "3", "--seed", "3"])
    assert r.exit_code == 0, r.output
    # the counting and threshold rules under test do not depend on LEADER: its 250 extractions (~6 min here)
    # are left out by a copy of the card without it; the refusal below runs the bundled card whole
    quick = card_variant(tmp_path / "w", version="5.0.0-noleader", leader_weight=0.0)
    r = runner.invoke(main, ["calibrate", str(prints), "--weights", str(quick)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert "prints: 150/150 images read" in r.stderr  # progress on stderr: minutes of work are not silent
    [measured] = report["sets"]
    assert measured["genuine"] == 150 and measured["impostor"] == 11025
    t = measured["thresholds"]
    assert report["suggested_match_threshold"] == t["0.001"] and t["0.001"] >= t["0.01"]
    assert all(0.0 <= measured[k][target] <= 1.0 for k in ("fnmr", "card_fmr") for target in ("0.01", "0.001"))
    # a gallery enrolling 2 impressions per finger: impression 3 probes each finger's best of two
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for f in sorted(prints.glob("*.png"))[: 33 * 3]:
        (fewer / f.name).write_bytes(f.read_bytes())
    r = runner.invoke(main, ["calibrate", str(fewer), "--enrolled", "2", "--weights", str(quick)])
    assert r.exit_code != 0  # 33 probes x 32 other fingers = 1,056 impostor comparisons: FMR 1 % only
    best_of_two = json.loads(r.stdout)
    [measured] = best_of_two["sets"]
    assert best_of_two["enrolled_per_finger"] == 2 and (measured["genuine"], measured["impostor"]) == (33, 1056)
    assert measured["thresholds"]["0.01"] is not None and measured["thresholds"]["0.001"] is None
    few = tmp_path / "few"
    few.mkdir()
    for f in sorted(prints.glob("0000[1-4]_*.png")):
        (few / f.name).write_bytes(f.read_bytes())
    r = runner.invoke(main, ["calibrate", str(few)])
    assert r.exit_code != 0 and "too few impostor pairs" in r.output
