"""GET /api/v1/subjects pages through the gallery over real HTTP: metadata only, stable cursors, admin only."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.process import Server

pytestmark = pytest.mark.slow


def test_subjects_are_listed_a_page_at_a_time(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    keys = tmp_path / "keys"
    made = {scope: subprocess.run([sys.executable, "-m", "fingerprint.cli", "create-key", "--scopes", scope, "--file",
                                   str(keys)], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            for scope in ("admin,enroll", "identify")}
    admin = {"Authorization": f"Bearer {made['admin,enroll']}"}
    server = Server(tmp_path / "data", API_KEYS_FILE=str(keys))
    try:
        server.wait_ready()
        for n, subject in enumerate(["dave", "alice", "carol", "bob"]):
            r = httpx.post(server.url + "/api/v1/fingerprint/enroll", headers=admin, timeout=60, json={
                "image": base64.b64encode(png_prints[n][0]).decode(), "subject_id": subject, "finger": "left_thumb"})
            assert r.status_code == 201, r.text
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            r = httpx.get(server.url + "/api/v1/subjects", params=params, headers=admin, timeout=10)
            assert r.status_code == 200, r.text
            page = r.json()
            pages += 1
            seen += page["subjects"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 2 and [s["subject_id"] for s in seen] == ["alice", "bob", "carol", "dave"]
        assert set(seen[0]) == {"subject_id", "templates", "fingers", "first_enrolled", "last_enrolled"}
        assert seen[0]["templates"] == 1 and seen[0]["fingers"] == ["left_thumb"]
        other = {"Authorization": f"Bearer {made['identify']}"}
        assert httpx.get(server.url + "/api/v1/subjects", headers=other, timeout=10).status_code == 403
        assert httpx.get(server.url + "/api/v1/subjects", timeout=10).status_code == 401
        r = httpx.get(server.url + "/api/v1/subjects", params={"cursor": "not a cursor!"}, headers=admin, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"
        r = httpx.get(server.url + "/api/v1/subjects", params={"limit": 0}, headers=admin, timeout=10)
        assert r.status_code == 400
    finally:
        server.stop()
