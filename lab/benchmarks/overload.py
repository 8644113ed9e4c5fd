"""Open-loop overload soak: offer a fixed request rate whatever the answers, as overload arrives.

The generator is deliberately thin (one pre-built HTTP/1.1 request written on a fresh connection per
request, `Connection: close`), so that on a 2-core machine it takes as little CPU from the server as
possible and has no connection pool whose idle-timeout races could be mistaken for server resets.
Latency is reported twice: as the client saw it (includes the generator's own scheduling lag and the
kernel accept queue) and as the server measured it (its exported request-duration histogram, read
before and after the soak, per status code).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

_BUCKET = re.compile(
    r'^http_server_request_duration_seconds_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$', re.MULTILINE)


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q) * 1000), 1) if values else float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_histogram(metrics_text: str, status: str, route: str) -> dict[float, float]:
    """Cumulative bucket counts {le: count} of the request-duration histogram for one status code."""
    out: dict[float, float] = {}
    for m in _BUCKET.finditer(metrics_text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        if labels.get("http_response_status_code") == status and labels.get("http_route") == route:
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            out[le] = out.get(le, 0.0) + float(m["value"])
    return out


def summarise_histogram(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Counts within each bound during the soak, and the bucket bound holding the 99th percentile."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in sorted(after)}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return {"count": 0}
    p99_bound = next(le for le, n in delta.items() if n >= 0.99 * total)
    return {
        "count": int(total),
        "within_50ms": round(delta.get(0.05, 0.0) / total, 4),
        "within_100ms": round(delta.get(0.1, 0.0) / total, 4),
        "within_250ms": round(delta.get(0.25, 0.0) / total, 4),
        "within_1s": round(delta.get(1.0, 0.0) / total, 4),
        "p99_at_most_s": p99_bound,
    }


def _request_bytes(host: str, path: str, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
    return head.encode() + payload


async def _post(host: str, port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # to EOF: the server closes after the response
        return int(status_line.split()[1])
    finally:
        writer.close()


async def open_loop(url: str, pid: int, body: dict[str, object], rate: float, seconds: float,
                    metrics_url: str) -> dict[str, object]:
    host, port = url.removeprefix("http://").split(":")
    request = _request_bytes(host, "/api/v1/fingerprint/identify", body)
    codes: dict[int, int] = {}
    errors: dict[str, int] = {}
    admitted: list[float] = []
    rejected: list[float] = []
    depth_max = 0
    stop_at = time.perf_counter() + seconds
    rss_start = rss_mb(pid)
    rss_timeline: list[float] = []

    async def one() -> None:
        t0 = time.perf_counter()
        try:
            code = await _post(host, int(port), request)
        except (OSError, ValueError, IndexError) as exc:
            code = 0
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        codes[code] = codes.get(code, 0) + 1
        (admitted if code == 200 else rejected).append(time.perf_counter() - t0)

    async def watch(c: httpx.AsyncClient) -> None:
        nonlocal depth_max
        last_rss = 0.0
        while time.perf_counter() < stop_at:
            r = await c.get("/api/v1/status")  # the admin view (the bench server runs without keys)
            if r.status_code == 200:
                depth_max = max(depth_max, r.json()["queue"]["depth"])
            if time.perf_counter() - last_rss >= 15:
                last_rss = time.perf_counter()
                rss_timeline.append(round(rss_mb(pid), 1))
            await asyncio.sleep(0.25)

    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        before = (await c.get(metrics_url)).text
        watcher = asyncio.ensure_future(watch(c))
        tasks = []
        next_at = time.perf_counter()
        while next_at < stop_at:
            tasks.append(asyncio.ensure_future(one()))
            next_at += 1.0 / rate
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*tasks)
        await watcher
        after = (await c.get(metrics_url)).text
    route = "/api/v1/fingerprint/identify"
    return {
        "offered_rps": round(rate, 1), "seconds": seconds, "codes": codes, "transport_errors": errors,
        "client_admitted_p50_ms": _pct(admitted, 50), "client_admitted_p99_ms": _pct(admitted, 99),
        "client_rejected_p50_ms": _pct(rejected, 50), "client_rejected_p99_ms": _pct(rejected, 99),
        "server_200": summarise_histogram(server_histogram(before, "200", route), server_histogram(after, "200", route)),
        "server_503": summarise_histogram(server_histogram(before, "503", route), server_histogram(after, "503", route)),
        "queue_depth_max": depth_max,
        "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_mb(pid), 1), "rss_every_15s_mb": rss_timeline,
    }
