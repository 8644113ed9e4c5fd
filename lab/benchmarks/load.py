"""Load benchmark for the real server: start-up, latency, throughput, batching speed-up, overload.

    .venv/bin/python -m lab.benchmarks.load --gallery 10000 --seconds 20

Spawns `fingerprint serve` on loopback with a gallery of N templates (random unit vectors written
straight into SQLite under the bundled model's version, so identify searches a realistic matrix), then:
1. time from process start to readiness;
2. one client, sequential identify: p50/p99;
3. C concurrent clients for S seconds, each waiting out a 503's Retry-After: throughput and p50/p99 (saturation);
4. the same with MAX_BATCH_SIZE=1 vs the default, in this run: the micro-batching speed-up;
5. a burst of 2x MAX_POOL_SIZE concurrent requests: how many were admitted and how many refused;
   (and the server's RSS when ready and after each saturation run: what a pod's memory request needs);
6. with --overload-seconds, an open-loop soak at 2x the measured capacity (benchmarks/overload.py).
The load generator shares the machine's cores with the server; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from fingerprint.gallery.codec import encode_embedding
from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta
from lab.benchmarks.overload import open_loop, rss_mb
from lab.synth.export import encode_png, synthetic_impressions


def seed_gallery(data_dir: Path, n: int, dim: int, version: str, grid: tuple[int, int, int] | None = None,
                 minutiae: bool = False, leader: bool = False) -> None:
    """n random templates of the model's version; with `grid`, random int8 descriptor grids too, and
    with `minutiae` 50 random minutiae each on a full-window mask, so identify pays for re-ranking
    its shortlist as it would on a real gallery; with `leader` also 35 random LEADER minutiae (model 5.0)."""
    from fingerprint.gallery.sqlite_schema import create_or_upgrade

    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(data_dir / "gallery.sqlite3")
    create_or_upgrade(conn)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC).isoformat()
    for start in range(0, n, 10000):
        vecs = rng.standard_normal((min(10000, n - start), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        grids = [None] * len(vecs) if grid is None else rng.integers(-60, 61, (len(vecs), *grid), dtype=np.int8)
        conn.executemany(
            "INSERT INTO templates (template_id, subject_id, finger, model_version, quality, created_at, embedding) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(str(uuid.uuid4()), f"bench-{start + i}", None, version, 0.9, now,
              encode_embedding(v, g, _random_minutiae(rng, leader) if minutiae and g is not None else None))
             for i, (v, g) in enumerate(zip(vecs, grids, strict=True))],
        )
    conn.commit()
    conn.close()


def _random_minutiae(rng: np.random.Generator, leader: bool) -> MinutiaeTemplate:
    points = np.c_[rng.uniform(40, 280, (50, 2)), rng.uniform(0, 2 * np.pi, 50)].astype(np.float32)
    second = np.c_[rng.uniform(40, 280, (35, 2)), rng.uniform(0, 2 * np.pi, 35)].astype(np.float32) if leader else None
    return MinutiaeTemplate(points, np.ones((20, 20), bool), second)


class Spawned:
    def __init__(self, data_dir: Path, port: int, **env: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{port + 1}/metrics"  # the metrics listener (METRICS_PORT)
        environ = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port), "LOG_LEVEL": "WARNING",
                   "RATE_LIMIT_PER_SECOND": "0", "METRICS_PORT": str(port + 1), **env}
        self.started = time.perf_counter()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop(); a file, not a pipe, which could fill and block
        self.proc = subprocess.Popen([sys.executable, "-m", "fingerprint.cli", "serve"], env=environ,
                                     stdout=subprocess.DEVNULL, stderr=self._log)

    def wait_ready(self) -> float:
        while True:
            try:
                if httpx.get(self.url + "/api/v1/models/status", timeout=1).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                self._log.seek(0)
                said = self._log.read().decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"server exited during start-up: {' | '.join(said)}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self._log.close()


def refined_count(metrics_url: str) -> float:
    """The server's count of probes compared again on LEADER's minutiae (FAST_ACCEPT) so far."""
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith("fingerprint_probes_refined_total"):
            return float(line.split()[-1])
    return 0.0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


async def sequential(url: str, body: dict[str, object], n: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await c.post("/api/v1/fingerprint/identify", json=body)
            r.raise_for_status()
            times.append(time.perf_counter() - t0)
    return times


async def sequential_enroll(url: str, images: list[bytes], prefix: str = "enroll") -> list[float]:
    """One client enrolling distinct prints one after another: what an enrolment costs end to end."""
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        for n, image in enumerate(images):
            t0 = time.perf_counter()
            r = await c.post("/api/v1/fingerprint/enroll",
                             json={"image": base64.b64encode(image).decode(), "subject_id": f"{prefix}-{n}"})
            r.raise_for_status()
            times.append(time.perf_counter() - t0)
    return times


async def closed_loop(url: str, body: dict[str, object], clients: int, seconds: float) -> dict[str, float]:
    ok: list[float] = []
    codes: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 4)

    async def worker(c: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            r = await c.post("/api/v1/fingerprint/identify", json=body)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 200:
                ok.append(time.perf_counter() - t0)
            elif r.status_code == 503 and "retry-after" in r.headers:  # as the API asks clients to
                await asyncio.sleep(min(float(r.headers["retry-after"]), max(0.0, stop_at - time.perf_counter())))

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return {"rps": len(ok) / elapsed, "p50_ms": pct(ok, 50), "p99_ms": pct(ok, 99),
            "codes": json.dumps(codes, sort_keys=True)}  # type: ignore[dict-item]


async def burst(url: str, body: dict[str, object], n: int) -> dict[int, int]:
    limits = httpx.Limits(max_connections=n + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        rs = await asyncio.gather(*(c.post("/api/v1/fingerprint/identify", json=body) for _ in range(n)))
    codes: dict[int, int] = {}
    for r in rs:
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
    return codes


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gallery", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--sequential", type=int, default=100)
    ap.add_argument("--capacity", type=int, default=100)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--overload-seconds", type=float, default=0, help="open-loop soak at 2x measured capacity")
    ap.add_argument("--compare-niceness", action="store_true", help="repeat the soak with COMPUTE_NICENESS=0")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="the model served (WEIGHTS_PATH)")
    ap.add_argument("--enrolls", type=int, default=10, help="sequential enrolments timed")
    ap.add_argument("--mated", action="store_true",
                    help="enrol another impression of the probe's finger first: identify finds its mate (the "
                         "distilled network's clear answers stand, FAST_ACCEPT); without it every probe is an impostor's")
    ap.add_argument("--settle", type=float, default=0,
                    help="seconds to wait once ready: the minutiae sketches are built in the background meanwhile "
                         "(10,000 templates: ~100 s); before that identify builds the ones it needs")
    ap.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE",
                    help="settings of the served processes (e.g. FAST_ACCEPT=0), as their environment")
    args = ap.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.env)

    meta = read_meta(args.weights)
    impressions = synthetic_impressions([424242], 2, seed=3)[0]
    probe, mate = encode_png(impressions[0]), encode_png(impressions[1])
    body = {"image": base64.b64encode(probe).decode(), "top_k": 5}
    results: dict[str, object] = {"model": meta.version, "gallery": args.gallery, "settings": env}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        seed_gallery(data, args.gallery, meta.embedding_dim, meta.version, meta.grid_shape(), meta.minutiae_weight > 0,
                     meta.leader_weight > 0)
        for label, batch in (("batched", "16"), ("batch1", "1")):
            server = Spawned(data, args.port, **{"MAX_BATCH_SIZE": batch, "MAX_POOL_SIZE": str(args.capacity),
                                                 "WEIGHTS_PATH": str(args.weights), **env})
            try:
                ready = server.wait_ready()
                time.sleep(args.settle)
                if args.mated and label == "batched":  # stored: the batch1 server finds it too
                    asyncio.run(sequential_enroll(server.url, [mate], prefix="mate"))
                asyncio.run(sequential(server.url, body, 5))  # warm
                if label == "batched":
                    results["startup_to_ready_s"] = round(ready, 2)
                    results["rss_ready_mb"] = round(rss_mb(server.proc.pid), 1)  # the gallery loaded, warm
                    seq = asyncio.run(sequential(server.url, body, args.sequential))
                    results["single_client"] = {"p50_ms": round(pct(seq, 50), 1), "p99_ms": round(pct(seq, 99), 1)}
                    results["identify_answer"] = httpx.post(server.url + "/api/v1/fingerprint/identify", json=body,
                                                            timeout=60).json().get("candidates", [])[:1]
                    results["probes_refined"] = refined_count(server.metrics_url)
                    results["overload_2x_capacity"] = asyncio.run(burst(server.url, body, 2 * args.capacity))
                    if args.enrolls:
                        prints = synthetic_impressions(list(range(515_000, 515_000 + args.enrolls)), 1, seed=5)
                        enrolled = asyncio.run(sequential_enroll(server.url, [encode_png(f[0]) for f in prints]))
                        results["enroll_sequential"] = {"p50_ms": round(pct(enrolled, 50), 1),
                                                        "p99_ms": round(pct(enrolled, 99), 1)}
                sat = asyncio.run(closed_loop(server.url, body, args.clients, args.seconds))
                results[f"saturation_{label}"] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in sat.items()}
                results[f"rss_after_saturation_{label}_mb"] = round(rss_mb(server.proc.pid), 1)
            finally:
                server.stop()
        if args.overload_seconds > 0:
            capacity = results["saturation_batched"]["rps"]  # type: ignore[index]
            # the same soak with compute threads at the event loop's priority, for the ratio in one run
            variants: list[tuple[str, dict[str, str]]] = [("overload_soak", {})] + (
                [("overload_soak_niceness0", {"COMPUTE_NICENESS": "0"})] if args.compare_niceness else [])
            for label, extra in variants:
                server = Spawned(data, args.port, **{"MAX_POOL_SIZE": str(args.capacity), "WEIGHTS_PATH": str(args.weights),
                                                     **env, **extra})
                try:
                    server.wait_ready()
                    asyncio.run(sequential(server.url, body, 5))  # warm
                    results[label] = asyncio.run(
                        open_loop(server.url, server.proc.pid, body, 2 * capacity, args.overload_seconds,
                                  server.metrics_url))
                finally:
                    server.stop()
    b = results["saturation_batched"]["rps"]  # type: ignore[index]
    one = results["saturation_batch1"]["rps"]  # type: ignore[index]
    results["batching_speedup"] = round(b / one, 2) if one else None
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
