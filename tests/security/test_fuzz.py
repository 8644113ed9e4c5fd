"""schemathesis fuzzes the service from its own OpenAPI document over real HTTP, bounded in examples and time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.process import Server

pytestmark = pytest.mark.slow

CHECKS = ",".join([
    "not_a_server_error",  # never a 5xx, whatever the input
    "status_code_conformance",  # only documented status codes
    "content_type_conformance",
    "response_schema_conformance",  # every body matches its documented schema
    "response_headers_conformance",
    "negative_data_rejection",  # schema-invalid input is refused with a 4xx
])


def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path: Path) -> None:
    # as deployed: keys required, so the document's bearer scheme holds (a request without one is a 401)
    keys = tmp_path / "keys"
    made = subprocess.run([sys.executable, "-m", "fingerprint.cli", "create-key", "--scopes", "enroll,verify,identify,admin",
                           "--file", str(keys)], capture_output=True, text=True, check=True)
    key = made.stdout.strip().splitlines()[-1]
    server = Server(tmp_path / "data", API_KEYS_FILE=str(keys))
    try:
        server.wait_ready()
        exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
        proc = subprocess.run(
            [exe, "run", f"{server.url}/schema/openapi.json", "--checks", CHECKS, "--max-examples", "40",
             "--request-timeout", "10", "--seed", "20261125", "--no-color", "-H", f"Authorization: Bearer {key}"],
            capture_output=True, text=True, timeout=600, check=False)
    finally:
        server.stop()
    summary = proc.stdout[-3000:]
    print(summary)
    assert proc.returncode == 0, summary
    assert " passed" in summary and "failures" not in summary.split("Test cases:")[-1]
