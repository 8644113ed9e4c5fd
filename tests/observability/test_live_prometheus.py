"""A real Prometheus scrapes a real service: recording rules must agree with the traffic we sent.

The repo's prometheus.yml is used as it is, but for target addresses (API and Alertmanager on
loopback). Debian's `prometheus` binary; everything started here is stopped here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.process import Server

pytestmark = pytest.mark.slow

OBS = Path(__file__).resolve().parents[2] / "observability"
DEADLINE_S = 240


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    server = Server(tmp_path / "data", MAX_POOL_SIZE="1", MAX_BATCH_SIZE="1")
    server.wait_ready()
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    config = (OBS / "prometheus" / "prometheus.yml").read_text()
    config = config.replace('"api:9464"', f'"127.0.0.1:{server.metrics_port}"')
    config = config.replace('"alertmanager:9093"', f'"127.0.0.1:{free_port()}"')
    (prom_dir / "prometheus.yml").write_text(config)
    for name in ("recording_rules.yml", "alert_rules.yml"):
        shutil.copy(OBS / "prometheus" / name, prom_dir / name)
    port = free_port()
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={prom_dir / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=15d"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Prometheus answers queries with 503 until its storage and rules are loaded (slow on a busy machine)
        wait_for(lambda: _ready(f"http://127.0.0.1:{port}"), time.monotonic(), "Prometheus to be ready")
        yield server, f"http://127.0.0.1:{port}"
    finally:
        prom.terminate()
        prom.wait(20)
        server.stop()


def _ready(prom: str) -> bool:
    try:
        return httpx.get(prom + "/-/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def query(prom: str, expr: str) -> list[dict[str, object]]:
    r = httpx.get(prom + "/api/v1/query", params={"query": expr}, timeout=10)
    for _ in range(15):  # a query that finds the engine busy gets 503: asked again, not failed
        if r.status_code != 503:
            break
        time.sleep(2)
        r = httpx.get(prom + "/api/v1/query", params={"query": expr}, timeout=10)
    body = r.json()
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def scalar(prom: str, expr: str) -> float | None:
    result = query(prom, expr)
    return float(result[0]["value"][1]) if result else None  # type: ignore[index]


def wait_for(predicate: object, started: float, what: str) -> None:
    while time.monotonic() - started < DEADLINE_S:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


async def _traffic(url: str, image: bytes, good: int, bad: int, want_503: int) -> dict[int, int]:
    codes: dict[int, int] = {}
    body = {"image": base64.b64encode(image).decode(), "threshold": 0.0}
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        for _ in range(good):
            r = await c.post("/api/v1/fingerprint/identify", json=body)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
        for _ in range(bad):
            r = await c.post("/api/v1/fingerprint/identify", json={"image": "***"})
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
        while codes.get(503, 0) < want_503:  # capacity is 1: concurrent requests overflow it
            rs = await asyncio.gather(*(c.post("/api/v1/fingerprint/identify", json=body) for _ in range(6)))
            for r in rs:
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
    return codes


def test_recording_rules_match_the_traffic_sent(stack: tuple[Server, str], png_prints: list[list[bytes]]) -> None:
    server, prom = stack
    started = time.monotonic()
    image = png_prints[0][0]
    # phase 1: create every series, and let Prometheus see them before counting anything
    asyncio.run(_traffic(server.url, image, good=1, bad=1, want_503=1))
    wait_for(lambda: scalar(prom, 'count(http_server_request_duration_seconds_count{job="fingerprint-api", '
                                  'http_route="/api/v1/fingerprint/identify", http_response_status_code=~"400|503"})') == 2 and
             scalar(prom, 'count(fingerprint_rejections_total{reason="queue_full"})') == 1, started, "first scrape")
    time.sleep(16)  # one more scrape so every series has a sample before phase 2

    codes = asyncio.run(_traffic(server.url, image, good=20, bad=30, want_503=10))
    expected_5xx_per_4xx = codes[503] / codes[400]

    def rules_caught_up() -> bool:
        err = scalar(prom, 'job:http_server_request_error_ratio:rate5m{job="fingerprint-api"}')
        cli = scalar(prom, 'job:http_server_request_client_error_ratio:rate5m{job="fingerprint-api"}')
        return bool(err and cli and abs(err / cli - expected_5xx_per_4xx) / expected_5xx_per_4xx < 0.15)

    wait_for(rules_caught_up, started, f"error ratios to reflect {codes}")
    err = scalar(prom, 'job:http_server_request_error_ratio:rate5m{job="fingerprint-api"}')
    cli = scalar(prom, 'job:http_server_request_client_error_ratio:rate5m{job="fingerprint-api"}')
    assert err is not None and cli is not None
    sent = sum(codes.values())
    assert err <= codes[503] / sent * 1.5  # other traffic (scrapes, probes) only dilutes the ratio

    # every 5xx we caused was a queue_full rejection; the rejection rule must say the same
    def rejection_rule_agrees() -> bool:
        rejected = scalar(prom, 'sum(job_reason:fingerprint_rejections:rate5m{job="fingerprint-api", reason="queue_full"})')
        errors = scalar(prom, 'job:http_server_errors:rate5m{job="fingerprint-api"}')
        return bool(rejected and errors and abs(rejected / errors - 1.0) < 0.1)

    wait_for(rejection_rule_agrees, started, "the rejection rule to agree with the 5xx rate")
    rejected = scalar(prom, 'sum(job_reason:fingerprint_rejections:rate5m{job="fingerprint-api", reason="queue_full"})')
    errors = scalar(prom, 'job:http_server_errors:rate5m{job="fingerprint-api"}')
    batch = scalar(prom, 'job:fingerprint_batch_size:mean_rate5m{job="fingerprint-api"}')
    assert batch is not None and batch == pytest.approx(1.0)  # MAX_BATCH_SIZE=1
    assert scalar(prom, 'job:fingerprint_model_loaded:min{job="fingerprint-api"}') == 1.0
    print(json.dumps({"codes_sent": codes, "error_ratio_5m": err, "client_error_ratio_5m": cli,
                      "queue_full_rate_5m": rejected, "errors_rate_5m": errors}))

    # the dashboard's queries parse and use only exported or recorded series
    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*?)(?:_bucket|_count|_sum)?[{ ]",
                              httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics").text, re.M))
    recorded = {r["record"] for g in yaml.safe_load((OBS / "prometheus/recording_rules.yml").read_text())["groups"]
                for r in g["rules"]}
    known = exported | recorded | {"up"}
    dash = json.loads((OBS / "grafana/dashboards/fingerprint-api-overview.json").read_text())
    for panel in dash["panels"]:
        for target in panel["targets"]:
            query(prom, target["expr"])
            names = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", target["expr"])
            assert names and set(names) <= known, (panel["title"], names)
