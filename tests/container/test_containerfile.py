"""The Containerfile has the properties the deployment relies on (checked as text: no engine here)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXT = (REPO / "Containerfile").read_text()


def test_multi_stage_cpu_torch_and_weights_inside() -> None:
    assert len(re.findall(r"^FROM ", TEXT, re.M)) >= 2
    assert "download.pytorch.org/whl/cpu" in TEXT
    assert not re.search(r"whl/cu\d+|nvidia|cuda", TEXT, re.I)
    assert "DEFAULT_WEIGHTS.exists()" in TEXT  # the build fails if the weights are not in the image


def test_runs_as_high_uid_non_root_with_healthcheck() -> None:
    users = re.findall(r"^USER (\d+)", TEXT, re.M)
    assert users and int(users[-1]) >= 10000
    assert re.search(r"^HEALTHCHECK .*", TEXT, re.M) and "/health" in TEXT
    assert re.search(r"^EXPOSE 8000 9464$", TEXT, re.M)
    assert "VOLUME [\"/data\"]" in TEXT and "TMPDIR=/tmp" in TEXT


def test_oci_labels_and_no_secrets() -> None:
    for label in ("source", "version", "licenses"):
        assert f"org.opencontainers.image.{label}" in TEXT
    assert not re.search(r"^(ENV|ARG)\s.*(PASSWORD|SECRET|TOKEN|API_KEY)", TEXT, re.M | re.I)


def test_ignore_file_keeps_tests_data_and_caches_out() -> None:
    for name in (".dockerignore", ".containerignore"):
        lines = (REPO / name).read_text().splitlines()
        assert "**" in lines  # deny by default, then allow only what the image needs
        allowed = {line[1:] for line in lines if line.startswith("!")}
        assert allowed == {"pyproject.toml", "README.md", "fingerprint/"}
