"""WSQ and JPEG 2000 over HTTP, against a real server process: enrolled from one format, found from another."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import image_bytes
from tests.process import Server

pytestmark = pytest.mark.slow


def test_wsq_enrolls_and_jpeg2000_identifies(tmp_path: Path, prints: list[list[np.ndarray]]) -> None:
    wsq = image_bytes(prints[0][0], "WSQ")
    assert wsq[:2] == b"\xff\xa0"  # real WSQ bytes, by NBIS's encoder
    server = Server(tmp_path)
    try:
        server.wait_ready()
        r = httpx.post(server.url + "/api/v1/fingerprint/enroll", files={"image": ("a.wsq", wsq, "image/x-wsq")},
                       data={"subject_id": "alice"}, timeout=60)
        assert r.status_code == 201, r.text
        enrolled = r.json()
        # the same finger's other impression, as JPEG 2000 in JSON
        probe = image_bytes(prints[0][1], "JPEG2000")
        r = httpx.post(server.url + "/api/v1/fingerprint/identify",
                       json={"image": base64.b64encode(probe).decode(), "top_k": 1, "threshold": 0.0}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["candidates"][0]["subject_id"] == "alice"
        # the dpi a WSQ header states is believed when the request names none: a 180 px print at 999 ppi is
        # 90 px at 500 dpi, too small; the same bytes with an explicit dpi are a usable print
        small = image_bytes(np.ascontiguousarray(prints[1][0][110:290, 110:290]), "WSQ").replace(b"PPI 500", b"PPI 999", 1)
        body = {"image": base64.b64encode(small).decode(), "subject_id": "alice"}
        r = httpx.post(server.url + "/api/v1/fingerprint/verify", json=body, timeout=60)
        assert r.status_code == 422 and r.json()["error"]["code"] == "image_too_small", r.text
        r = httpx.post(server.url + "/api/v1/fingerprint/verify", json={**body, "dpi": 500}, timeout=60)
        assert r.status_code == 200, r.text
        r = httpx.post(server.url + "/api/v1/fingerprint/enroll",
                       json={"image": base64.b64encode(wsq[:300]).decode(), "subject_id": "bob"}, timeout=60)
        assert r.status_code == 422 and r.json()["error"]["code"] == "corrupt_image"
        assert enrolled["subject_id"] == "alice"
    finally:
        server.stop()
