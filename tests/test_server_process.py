"""The real `fingerprint serve` process: start-up, durability after kill -9, draining on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import signal
from collections.abc import Iterator
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

    async def enroll_forever(client: httpx.AsyncClient, worker: int) -> None:
        n = 0
        while True:
            image = png_prints[(worker + n) % 4][n % 3]
            try:
                r = await client.post("/api/v1/fingerprint/enroll", json=_enroll_body(image, f"w{worker}-{n}"))
            except httpx.TransportError:
                return
            if r.status_code == 201:
                acknowledged.append(r.json()["template_id"])
            n += 1

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        burst = [asyncio.ensure_future(enroll_forever(client, w)) for w in range(4)]
        while len(acknowledged) < 12:
            await asyncio.sleep(0.05)
        server.proc.send_signal(signal.SIGKILL)
        await asyncio.gather(*burst)
    server.proc.wait(10)

    again = server_factory()
    again.wait_ready()
    status = httpx.get(again.url + "/api/v1/models/status").json()
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
