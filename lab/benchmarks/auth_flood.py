"""A legitimate client's identify latency while strangers flood the service with random API keys.

One run, two phases on the same server: the legitimate client alone, then beside `--flood-connections`
connections sending `fpk_<random id>_<random secret>` at `--flood-rps` in all (0: as fast as answered). Reports both p50s
and their ratio, and what the flood was answered with (401 until its address's bucket is spent, then 429).

    PYTHONPATH=. .venv/bin/python -m lab.benchmarks.auth_flood --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import tempfile
import time
from pathlib import Path

import httpx

from fingerprint.security.api_keys import append_record, new_key
from lab.benchmarks.load import Spawned, pct
from lab.synth.export import encode_png, synthetic_impressions


async def _legit(url: str, key: str, body: dict[str, object], seconds: float) -> list[float]:
    times = []
    stop_at = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as c:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            r = await c.post("/api/v1/fingerprint/identify", json=body)
            r.raise_for_status()
            times.append(time.perf_counter() - t0)
    return times


async def _flood(url: str, connections: int, rps: float, stop: asyncio.Event, codes: dict[int, int]) -> None:
    """Each connection sends its share of `rps` (0: as fast as answered) with a fresh random key each time."""
    interval = connections / rps if rps > 0 else 0.0

    async def one(c: httpx.AsyncClient) -> None:
        next_at = time.perf_counter()
        while not stop.is_set():
            forged = f"fpk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
            r = await c.get("/api/v1/subjects/x", headers={"Authorization": f"Bearer {forged}"})
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        await asyncio.gather(*(one(c) for _ in range(connections)))


async def _phases(url: str, key: str, body: dict[str, object], seconds: float, connections: int,
                  rps: float) -> dict[str, object]:
    await _legit(url, key, body, 2.0)  # warm
    quiet = await _legit(url, key, body, seconds)
    stop, codes = asyncio.Event(), {}
    flood = asyncio.ensure_future(_flood(url, connections, rps, stop, codes))
    await asyncio.sleep(1.0)
    t0 = time.perf_counter()
    loud = await _legit(url, key, body, seconds)
    elapsed = time.perf_counter() - t0
    stop.set()
    await flood
    return {"legit_p50_ms_quiet": round(pct(quiet, 50), 1), "legit_p50_ms_flood": round(pct(loud, 50), 1),
            "ratio": round(pct(loud, 50) / pct(quiet, 50), 2), "legit_requests": [len(quiet), len(loud)],
            "flood_codes": codes, "flood_rps": round(sum(codes.values()) / elapsed, 1)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--flood-connections", type=int, default=48)
    parser.add_argument("--flood-rps", type=float, default=65.0, help="offered flood rate; 0 = as fast as answered")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    image = encode_png(synthetic_impressions([5], impressions=1, seed=3)[0][0])
    body = {"image": base64.b64encode(image).decode(), "threshold": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.json"
        key, record = new_key(["identify"])
        append_record(keys, record)
        server = Spawned(Path(tmp) / "data", args.port, API_KEYS_FILE=str(keys), RATE_LIMIT_PER_SECOND="100")
        try:
            server.wait_ready()
            result = asyncio.run(_phases(server.url, key, body, args.seconds, args.flood_connections,
                                          args.flood_rps))
        finally:
            server.stop()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
