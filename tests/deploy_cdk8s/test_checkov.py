"""checkov (its own venv, .venv-checkov, made by `make test`) finds no failed check in any manifest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def test_checkov_has_no_failed_checks_and_every_skip_says_why(synthesized: Path) -> None:
    assert CHECKOV.exists(), "run `make test` (it installs checkov into .venv-checkov)"
    proc = subprocess.run([str(CHECKOV), "--framework", "kubernetes", "-d", str(synthesized), "--output", "json",
                           "--skip-download"], capture_output=True, text=True, check=False)
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    assert not failed, [(c["check_id"], c["resource"]) for c in failed]
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert all(c["check_result"].get("suppress_comment") for c in skipped)
    passed = sum(len(r["results"]["passed_checks"]) for r in reports)
    assert passed > 1000
