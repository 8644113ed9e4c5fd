"""Two real service processes on one PostgreSQL: changes cross replicas, outages heal by themselves."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg import PostgresServer
from tests.process import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(url: str, name: str) -> Server:
        s = Server(tmp_path / name, DATABASE_URL=url, GALLERY_SYNC_INTERVAL="1")
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _b64(image: bytes) -> str:
    return base64.b64encode(image).decode()


def _candidates(server: Server, image: bytes) -> set[str]:
    r = httpx.post(server.url + "/api/v1/fingerprint/identify",
                   json={"image": _b64(image), "top_k": 50, "threshold": 0.0}, timeout=30)
    assert r.status_code == 200, r.text
    return {c["subject_id"] for c in r.json()["candidates"]}


def _until(predicate: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_enroll_and_erase_cross_replicas_within_the_bound(postgres: Any, replicas: Callable[..., Server],
                                                          png_prints: list[list[bytes]]) -> None:
    url = postgres.create_database(f"r_{uuid.uuid4().hex[:12]}")
    a, b = replicas(url, "a"), replicas(url, "b")
    a.wait_ready()
    b.wait_ready()
    lags = []
    for i in range(3):
        r = httpx.post(a.url + "/api/v1/fingerprint/enroll",
                       json={"image": _b64(png_prints[i][0]), "subject_id": f"s{i}"}, timeout=30)
        assert r.status_code == 201
        lags.append(_until(lambda i=i: f"s{i}" in _candidates(b, png_prints[i][1]), timeout=5))
    assert httpx.get(b.url + "/api/v1/subjects/s1").status_code == 200
    r = httpx.delete(b.url + "/api/v1/subjects/s1")
    assert r.json()["erased_templates"] == 1
    lags.append(_until(lambda: "s1" not in _candidates(a, png_prints[1][1]), timeout=5))
    assert httpx.get(a.url + "/api/v1/subjects/s1").status_code == 404
    assert "s1" not in _candidates(b, png_prints[1][1])  # the erasing replica sees its own write at once
    print({"replica_sync_lag_s": [round(x, 3) for x in lags]})

    a.stop()  # restart: the gallery is the database's, not the process's
    again = replicas(url, "a2")
    again.wait_ready()
    assert _candidates(again, png_prints[0][1]) >= {"s0", "s2"}


def test_database_outage_answers_503_and_heals(replicas: Callable[..., Server], png_prints: list[list[bytes]]) -> None:
    pg = PostgresServer()
    pg.start()
    try:
        url = pg.create_database("outage")
        a = replicas(url, "a")
        a.wait_ready()
        enroll = {"image": _b64(png_prints[0][0]), "subject_id": "before"}
        assert httpx.post(a.url + "/api/v1/fingerprint/enroll", json=enroll, timeout=30).status_code == 201

        pg.stop()
        r = httpx.get(a.url + "/api/v1/models/status", timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        r = httpx.post(a.url + "/api/v1/fingerprint/enroll", json={**enroll, "subject_id": "during"}, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        assert httpx.get(a.url + "/health").status_code == 200

        pg.start()
        _until(lambda: httpx.get(a.url + "/api/v1/models/status", timeout=30).status_code == 200, timeout=30)
        r = httpx.post(a.url + "/api/v1/fingerprint/enroll", json={**enroll, "subject_id": "after"}, timeout=30)
        assert r.status_code == 201
        assert {"before", "after"} <= _candidates(a, png_prints[0][1])
        assert "during" not in _candidates(a, png_prints[0][1])
    finally:
        pg.destroy()
