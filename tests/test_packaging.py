"""The runtime ships without the lab: the wheel holds no lab module or recipe, and serving imports none."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_runtime_and_no_lab(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fingerprint/model/weights/fingerprint-net.pt" in names and "fingerprint/app.py" in names
    assert not [n for n in names if n.startswith("lab/") or n.endswith((".toml", ".md"))
                or any(part in n for part in ("training", "evaluation", "benchmarks", "recipes"))]


def test_serving_and_the_cli_import_no_lab_module_and_no_matplotlib() -> None:
    code = ("import sys, fingerprint.app, fingerprint.cli, fingerprint.server, fingerprint.calibration.calibrate; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'lab', 'matplotlib', 'nbis'}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/").stdout
    assert out.strip() == "[]"
