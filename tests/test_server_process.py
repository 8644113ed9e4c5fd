"""The real `fingerprint serve` process: start-up, durability after kill -9, draining on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.process import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[Server]]:
    started: list[Server] = []

    class Tracked(Server):
        def __init__(self, data_dir: Path = tmp_path / "data", **env: str) -> None:
            super().__init__(data_dir, **env)
            started.append(self)

    yield Tracked
    for s in started:
        s.stop()


def _enroll_body(image: bytes, subject: str) -> dict[str, str]:
    return {"image": base64.b64encode(image).decode(), "subject_id": subject}


async def test_every_acknowledged_enroll_survives_kill_9(server_factory: type[Server],
                                                         png_prints: list[list[bytes]]) -> None:
    server = server_factory()
    server.wait_ready()
    acknowledged: list[str] = []
    killed = asyncio.Event()

    async def enroll_forever(client: httpx.AsyncClient, worker: int) -> None:
        n = 0
        while not killed.is_set():
            image = png_prints[(worker + n) % 4][n % 3]
            try:
                r = await client.post("/api/v1/fingerprint/enroll", json=_enroll_body(image, f"w{worker}-{n}"))
            except httpx.TransportError:
                if killed.is_set():
                    return
                continue  # a slow answer before the kill (a busy machine) is not the end of the burst
            if r.status_code == 201:
                acknowledged.append(r.json()["template_id"])
            n += 1

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        burst = [asyncio.ensure_future(enroll_forever(client, w)) for w in range(4)]
        give_up = time.monotonic() + 600
        while len(acknowledged) < 12:
            assert time.monotonic() < give_up, f"only {len(acknowledged)} enrolls acknowledged in 10 minutes"
            await asyncio.sleep(0.05)
        killed.set()
        server.proc.send_signal(signal.SIGKILL)
        await asyncio.gather(*burst)
    server.proc.wait(10)

    again = server_factory()
    again.wait_ready()
    status = httpx.get(again.url + "/api/v1/status").json()
    assert status["gallery"]["size"] >= len(acknowledged)
    async with httpx.AsyncClient(base_url=again.url, timeout=10) as client:
        r = await client.post("/api/v1/fingerprint/identify",
                              json={"image": base64.b64encode(png_prints[0][0]).decode(), "top_k": 1000,
                                    "threshold": 0.0})
        stored = {c["template_id"] for c in r.json()["candidates"]}
    assert set(acknowledged) <= stored


async def test_sigterm_turns_unready_then_finishes_in_flight_work(server_factory: type[Server],
                                                                   png_prints: list[list[bytes]]) -> None:
    server = server_factory(SHUTDOWN_DELAY="1.5", LOG_LEVEL="INFO")
    ready_after = server.wait_ready()
    assert ready_after < 60
    body = {"image": base64.b64encode(png_prints[0][0]).decode(), "threshold": 0.0}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        in_flight = [asyncio.ensure_future(client.post("/api/v1/fingerprint/identify", json=body)) for _ in range(6)]
        await asyncio.sleep(0.05)
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        r = await client.get("/api/v1/models/status")
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down"
        assert (await client.get("/health")).status_code == 200
        results = await asyncio.gather(*in_flight)
    assert [r.status_code for r in results] == [200] * 6
    # uvicorn re-raises the captured SIGTERM once its graceful shutdown has finished
    assert server.proc.wait(30) in (0, -signal.SIGTERM)
    output = server.proc.stdout.read().decode() if server.proc.stdout else ""
    assert '"message":"stopped"' in output  # the lifespan shutdown (queue drain, store close) completed


# --- issue 28: stalled connections, what a public listener shows, a full disk ---------------------------

def _read_all(s: socket.socket) -> bytes:
    chunks = []
    while True:
        data = s.recv(4096)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_stalled_headers_and_bodies_are_cut_off(server_factory: type[Server]) -> None:
    """Before, a connection that stopped mid-headers or mid-body was held forever."""
    server = server_factory(HEADER_TIMEOUT="1", BODY_TIMEOUT="1")
    server.wait_ready()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")  # headers that never end
        assert _read_all(s) == b""  # closed by the server, not by our 10 s timeout
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")  # one request answered, then a stalled second
        got = b""
        while b'{"status":"ok"}' not in got:
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /health HTTP/1.1\r\n")
        assert _read_all(s) == b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /api/v1/fingerprint/identify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"image\": \"")  # a body that never completes
        answer = _read_all(s)
        assert answer.startswith(b"HTTP/1.1 408") and b"body_timeout" in answer, answer[:300]


def test_the_public_listener_shows_no_server_banner_and_no_metrics(server_factory: type[Server]) -> None:
    server = server_factory()
    server.wait_ready()
    r = httpx.get(server.url + "/health")
    assert "server" not in r.headers  # was `server: uvicorn`
    assert httpx.get(server.url + "/metrics").status_code == 404
    metrics = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics").text
    assert "fingerprint_gallery_templates" in metrics and "http_server_request_duration_seconds" in metrics


def test_forwarded_addresses_are_believed_only_from_trusted_proxies(server_factory: type[Server],
                                                                   tmp_path: Path) -> None:
    """Clients behind one proxy get their own rate-limit buckets; anyone else's X-Forwarded-For is ignored
    (before, loopback peers were trusted by default, and no other proxy could be)."""
    from fingerprint.security.api_keys import append_record, new_key

    keys = tmp_path / "keys.json"
    append_record(keys, new_key(["admin"])[1])

    def codes(server: Server) -> list[int]:  # 8 requests, each naming another client; all 401 or 429
        return [httpx.get(server.url + "/api/v1/subjects/x", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                for i in range(8)]

    behind_proxy = server_factory(tmp_path / "a", API_KEYS_FILE=str(keys), RATE_LIMIT_PER_SECOND="3",
                                  TRUSTED_PROXIES="127.0.0.1")
    direct = server_factory(tmp_path / "b", API_KEYS_FILE=str(keys), RATE_LIMIT_PER_SECOND="3")
    behind_proxy.wait_ready()
    direct.wait_ready()
    assert 429 not in codes(behind_proxy)  # eight clients behind the proxy: eight buckets
    assert 429 in codes(direct)  # forged headers from one peer: one bucket, whatever they name


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def test_a_full_disk_degrades_writes_but_keeps_erasure_and_serving(server_factory: type[Server], tmp_path: Path,
                                                                  png_prints: list[list[bytes]]) -> None:
    """SQLite on a small filesystem filled by something else: readiness says `degraded`/`disk_full` (it said
    ready), enroll fails at once with 503 `store_full`, identify serves, and an erasure still succeeds (space
    set aside for it); freeing space heals without a restart. Needs root for the tmpfs, as CI runs."""
    data = tmp_path / "small"
    _mount_tmpfs(data, "48m")
    try:
        server = server_factory(data)
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for subject in ("keep", "erase-me"):
                assert c.post("/api/v1/fingerprint/enroll", json=_enroll_body(png_prints[0][0], subject)).status_code == 201
            with open(data / "filler", "wb") as f, contextlib.suppress(OSError):  # another writer fills the disk
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            _wait(lambda: c.get("/api/v1/models/status").json()["store"] == "disk_full")
            r = c.post("/api/v1/fingerprint/enroll", json=_enroll_body(png_prints[1][0], "new"))
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_full"
            identify = {"image": base64.b64encode(png_prints[0][1]).decode(), "threshold": 0.0}
            assert c.post("/api/v1/fingerprint/identify", json=identify).status_code == 200
            r = c.delete("/api/v1/subjects/erase-me")
            assert r.status_code == 200 and r.json()["erased_templates"] == 1
            assert c.get("/api/v1/subjects/erase-me").status_code == 404
            (data / "filler").unlink()
            _wait(lambda: c.get("/api/v1/models/status").json()["status"] == "ready")
            assert c.post("/api/v1/fingerprint/enroll", json=_enroll_body(png_prints[1][0], "new")).status_code == 201
        server.stop()
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_startup_mistakes_are_one_clear_line_not_a_traceback_or_a_hang(server_factory: type[Server],
                                                                      tmp_path: Path,
                                                                      png_prints: list[list[bytes]]) -> None:
    """A missing API_KEYS_FILE died with a traceback; a missing template key file left the service up and
    `model_loading` forever; a wrong one did too, its cause logged only at shutdown."""
    missing = server_factory(API_KEYS_FILE=str(tmp_path / "nope.json"))
    assert missing.proc.wait(60) == 2
    out = missing.output()
    assert "API_KEYS_FILE" in out and "Traceback" not in out
    missing = server_factory(TEMPLATE_KEY_FILE=str(tmp_path / "nope.json"))
    assert missing.proc.wait(60) == 2 and "TEMPLATE_KEY_FILE" in missing.output()

    from fingerprint.security.template_cipher import TemplateCipher

    right, wrong = tmp_path / "right.json", tmp_path / "wrong.json"
    TemplateCipher.new_key_file(right, "k1")
    TemplateCipher.new_key_file(wrong, "k1")  # the same key id, other bytes: a restored or mixed-up Secret
    data = tmp_path / "sealed"
    first = server_factory(data, TEMPLATE_KEY_FILE=str(right))
    first.wait_ready()
    assert httpx.post(first.url + "/api/v1/fingerprint/enroll", json=_enroll_body(png_prints[0][0], "a"),
                      timeout=30).status_code == 201
    first.stop()
    again = server_factory(data, TEMPLATE_KEY_FILE=str(wrong))
    _wait(lambda: _code(again) == "gallery_unreadable", timeout=60)
    out = again.output()
    errors = [json.loads(x) for x in out.splitlines() if x.startswith("{") and '"error"' in x]
    assert any("TEMPLATE_KEY_FILE" in e.get("error", {}).get("message", "") for e in errors), out[-2000:]


def _code(server: Server) -> str | None:
    try:
        r = httpx.get(server.url + "/api/v1/models/status", timeout=5)
    except httpx.TransportError:
        return None
    return r.json().get("error", {}).get("code") if r.status_code == 503 else "ready"
