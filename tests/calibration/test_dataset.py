"""Folders of `<finger>_<impression>` images, and the resolution of the sample sets whose files do not say it."""

from __future__ import annotations

from pathlib import Path

from fingerprint.calibration.dataset import folder_dpi, scan_folder


def test_known_sets_get_their_true_resolution_and_others_500(tmp_path: Path) -> None:
    assert folder_dpi(Path("x/FVC2002_DB2_B")) == 569.0  # the FX2000 optical sensor, not 500
    assert folder_dpi(Path("x/Neurotech_UareU_sample_DB")) == 512.0
    assert folder_dpi(Path("x/FVC2000_DB1_B")) == 500.0


def test_scan_keeps_only_the_layout_sorted_by_finger_then_impression(tmp_path: Path) -> None:
    for name in ("b_2.png", "b_10.png", "a_1.tif", "notes.txt", "c.png", "d_x.png"):
        (tmp_path / name).write_bytes(b"")
    assert [(i.finger, i.impression) for i in scan_folder(tmp_path)] == [("a", 1), ("b", 2), ("b", 10)]
