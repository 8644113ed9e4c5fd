"""1:N search at scale: the service's GalleryIndex against an exact float32 numpy reference, same data, same run.

    .venv/bin/python -m lab.benchmarks.search --sizes 10000 100000 1000000 [--postgres-url URL]

For each gallery size (random unit vectors of the model's dimension): single-probe search time p50/p99,
probes/s when 64 probes are batched, bytes per template in the index, recall@1 and recall@10 against
exact float32 (probes are noisy copies of gallery vectors, as a real mate would be, plus random probes),
the numpy reference time and the ratio; then the re-ranking a dense-matching model adds to identify.
Start-up load time from each store is measured at --load-size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from fingerprint.gallery.index import GalleryIndex
from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import GalleryStore, Template, TemplateMeta
from fingerprint.model.comparator import Comparator
from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta


def unit(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build_index(vecs: np.ndarray) -> GalleryIndex:
    idx = GalleryIndex(vecs.shape[1], initial_capacity=len(vecs))
    # bulk fill (the service adds one by one; the matrix layout is the same)
    idx._matrix = torch.from_numpy(vecs).to(torch.float16)
    idx._template_ids = [str(i) for i in range(len(vecs))]
    idx._subjects = idx._template_ids
    idx._fingers = [None] * len(vecs)
    for _ in range(len(vecs)):  # every per-row column the index keeps, or the re-rank reads past the end
        idx._minutiae.append(None)
    idx._row_of = {t: i for i, t in enumerate(idx._template_ids)}
    idx._size = len(vecs)
    return idx


def timed(fn: object, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


def bench_size(n: int, d: int, k: int, rng: np.random.Generator) -> dict[str, object]:
    gallery = unit(n, d, rng)
    idx = build_index(gallery)
    mates = rng.integers(0, n, 50)
    noisy = gallery[mates] + 0.06 * rng.standard_normal((50, d)).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    random_probes = unit(50, d, rng)
    probes = np.concatenate([noisy, random_probes])

    idx.search(probes[0], k)  # warm
    ours = timed(lambda: idx.search(probes[int(rng.integers(0, 100))], k), 30)
    ref = timed(lambda: np.argpartition(-(gallery @ probes[0]), k)[:k], 10)
    batch = probes[:64]
    batched = timed(lambda: idx.search_batch(batch, k), 3)

    hits1 = hits10 = 0
    for p in probes:
        exact = np.argsort(-(gallery @ p))[:k]
        got = [int(h.template_id) for h in idx.search(p, k)]
        hits1 += got[0] == exact[0]
        hits10 += len(set(got) & set(exact[:k]))
    return {
        "templates": n,
        "search_ms_p50": round(float(np.percentile(ours, 50)) * 1000, 2),
        "search_ms_p99": round(float(np.percentile(ours, 99)) * 1000, 2),
        "batched_probes_per_s": round(64 / float(np.median(batched)), 1),
        "bytes_per_template": idx.bytes_per_template,
        "recall_at_1": hits1 / len(probes),
        f"recall_at_{k}": hits10 / (len(probes) * k),
        "numpy_float32_ms_p50": round(float(np.percentile(ref, 50)) * 1000, 2),
        "ratio_ours_over_numpy": round(float(np.percentile(ours, 50)) / float(np.percentile(ref, 50)), 2),
    }


def bench_rerank(d: int, rng: np.random.Generator, n: int = 10_000) -> dict[str, object]:
    """What identify adds to the scan for a model with dense matching: the probe's 9 views re-score
    the 256-row shortlist, then its descriptor grid (with the card's rotations) re-scores the best 64
    (independent of n)."""
    gallery = unit(n, d, rng)
    idx = build_index(gallery)
    meta = read_meta(DEFAULT_WEIGHTS)
    shape = meta.grid_shape() or (64, 10, 10)  # the bundled model's grid and comparison
    idx._grids = torch.randint(-60, 61, (n, *shape), dtype=torch.int8)
    idx.comparator = Comparator.from_card(meta)  # the card's grid comparison (no minutiae: none stored here)
    views = unit(9, d, rng)
    grid = torch.randint(-60, 61, shape, dtype=torch.int8).numpy()
    assert len(idx.search_views(views, 10, grid)) == 10  # warm
    scan = timed(lambda: idx.search(views[0], 10), 30)
    full = timed(lambda: idx.search_views(views, 10, grid), 30)
    return {
        "templates": n,
        "scan_ms_p50": round(float(np.percentile(scan, 50)) * 1000, 2),
        "identify_ms_p50": round(float(np.percentile(full, 50)) * 1000, 2),
        "identify_ms_p99": round(float(np.percentile(full, 99)) * 1000, 2),
        "bytes_per_template": idx.bytes_per_template,
    }


async def load_time(store: GalleryStore, n: int, d: int) -> dict[str, float]:
    from fingerprint.gallery.postgres_store import PostgresStore

    await store.open()
    if isinstance(store, PostgresStore):
        await store.ensure_schema()
    rng = np.random.default_rng(1)
    vecs = unit(n, d, rng)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    for i, v in enumerate(vecs):
        await store.add(Template(TemplateMeta(uuid.uuid4().hex, f"s{i}", None, "bench", 0.9, now), v))
    write = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx = GalleryIndex(d, initial_capacity=n)
    async for t in store.iter_templates(("bench",)):  # PostgreSQL: one consistent snapshot, as a replica loads
        idx.add(t.meta.template_id, t.meta.subject_id, None, t.embedding)
    load = time.perf_counter() - t0
    await store.close()
    return {"templates": n, "enroll_writes_per_s": round(n / write, 1), "startup_load_s": round(load, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--load-size", type=int, default=20_000)
    ap.add_argument("--postgres-url", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    report: dict[str, object] = {"threads": args.threads, "dim": args.dim,
                                 "search": [bench_size(n, args.dim, args.k, rng) for n in args.sizes],
                                 "identify_with_dense_rerank": bench_rerank(args.dim, rng)}
    with tempfile.TemporaryDirectory() as tmp:
        loads = {"sqlite": asyncio.run(load_time(SqliteStore(Path(tmp) / "g.sqlite3"), args.load_size, args.dim))}
    if args.postgres_url:
        from fingerprint.gallery.postgres_store import PostgresStore

        loads["postgres"] = asyncio.run(load_time(PostgresStore(args.postgres_url), args.load_size, args.dim))
    report["store_load"] = loads
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
