"""The queue and batching settings chosen from measurement: one run, one seeded gallery, one server per setting.

    PYTHONPATH=. .venv/bin/python -m lab.benchmarks.sweep --gallery 10000 --settle 120 --seconds 20 \
        --batch 1 4 16 --wait 0 5 --pool 8 16 32 100

1. Batching: for each MAX_BATCH_SIZE x MAX_BATCH_WAIT_MS (MAX_POOL_SIZE at its default), one client's identify
   p50 and the saturated throughput of `--clients` closed-loop clients (each waiting out a 503's Retry-After).
2. Admission: for each MAX_POOL_SIZE (batching at its default), an open-loop soak offered at 2x the best
   saturated throughput of part 1: what was answered, the admitted requests' p99 (client and server side) and
   the refusals' p99. A larger queue admits more of an overload, and each admitted request waits longer.

The identify probe has its mate enrolled (the fast probe network's clear answers stand), as in
`benchmarks.load --mated`. The load generator shares the cores with the server: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path

from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta
from lab.benchmarks.load import Spawned, closed_loop, pct, seed_gallery, sequential, sequential_enroll
from lab.benchmarks.overload import open_loop
from lab.synth.export import encode_png, synthetic_impressions


def _serve(data: Path, port: int, settle: float, **env: str) -> Spawned:
    server = Spawned(data, port, **env)
    server.wait_ready()
    time.sleep(settle)  # the minutiae sketches are built in the background meanwhile
    return server


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gallery", type=int, default=10000)
    ap.add_argument("--settle", type=float, default=120, help="seconds after readiness before measuring")
    ap.add_argument("--seconds", type=float, default=20, help="of each saturation run and each soak")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--sequential", type=int, default=20)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--wait", type=float, nargs="+", default=[0.0, 5.0], help="MAX_BATCH_WAIT_MS values")
    ap.add_argument("--pool", type=int, nargs="+", default=[8, 16, 32, 100], help="MAX_POOL_SIZE values")
    ap.add_argument("--port", type=int, default=8770)
    args = ap.parse_args(argv)

    meta = read_meta(DEFAULT_WEIGHTS)
    impressions = synthetic_impressions([424242], 2, seed=3)[0]
    body = {"image": base64.b64encode(encode_png(impressions[0])).decode(), "top_k": 5}
    batching: list[dict[str, object]] = []
    admission: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        seed_gallery(data, args.gallery, meta.embedding_dim, meta.version, meta.grid_shape(), meta.minutiae_weight > 0,
                     meta.leader_weight > 0)
        mated = False
        for size in args.batch:
            for wait in args.wait if size > 1 else args.wait[:1]:  # a batch of one never waits
                server = _serve(data, args.port, args.settle, MAX_BATCH_SIZE=str(size), MAX_BATCH_WAIT_MS=str(wait))
                try:
                    if not mated:  # stored: every later server finds it too
                        asyncio.run(sequential_enroll(server.url, [encode_png(impressions[1])], prefix="mate"))
                        mated = True
                    asyncio.run(sequential(server.url, body, 5))  # warm
                    one = asyncio.run(sequential(server.url, body, args.sequential))
                    sat = asyncio.run(closed_loop(server.url, body, args.clients, args.seconds))
                finally:
                    server.stop()
                row = {"max_batch_size": size, "max_batch_wait_ms": wait,
                       "one_client_p50_ms": round(pct(one, 50), 1),
                       **{f"saturated_{k}": (round(v, 1) if isinstance(v, float) else v) for k, v in sat.items()}}
                batching.append(row)
                print(json.dumps(row), flush=True)
        best = max(float(r["saturated_rps"]) for r in batching)  # type: ignore[arg-type]
        for pool in args.pool:
            server = _serve(data, args.port, args.settle, MAX_POOL_SIZE=str(pool))
            try:
                asyncio.run(sequential(server.url, body, 5))  # warm
                soak = asyncio.run(open_loop(server.url, server.proc.pid, body, 2 * best, args.seconds,
                                             server.metrics_url))
            finally:
                server.stop()
            codes: dict[int, int] = soak["codes"]  # type: ignore[assignment]
            row = {"max_pool_size": pool, "offered_rps": soak["offered_rps"],
                   "served_rps": round(codes.get(200, 0) / args.seconds, 1), "answered": codes,
                   "transport_errors": soak["transport_errors"],
                   "admitted_p99_ms": soak["client_admitted_p99_ms"], "refused_p99_ms": soak["client_rejected_p99_ms"],
                   "server_200_p99_at_most_s": soak["server_200"].get("p99_at_most_s"),  # type: ignore[attr-defined]
                   "server_503_p99_at_most_s": soak["server_503"].get("p99_at_most_s"),  # type: ignore[attr-defined]
                   "queue_depth_max": soak["queue_depth_max"]}
            admission.append(row)
            print(json.dumps(row), flush=True)
    report: dict[str, object] = {"model": meta.version, "gallery": args.gallery, "batching": batching,
                                 "admission": admission}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
