"""1:N search at scale: the service's GalleryIndex against an exact float32 numpy reference, same data, same run.

    .venv/bin/python -m lab.benchmarks.search --sizes 10000 100000 1000000 [--postgres-url URL]

For each gallery size (random unit vectors of the model's dimension): single-probe search time p50/p99,
probes/s when 64 probes are batched, bytes per template in the index, recall@1 and recall@10 against
exact float32 (probes are noisy copies of gallery vectors, as a real mate would be, plus random probes),
the numpy reference time and the ratio. Then identify's whole search as served (shortlists, descriptor grids,
minutiae sketches and full comparisons, one thread) at each of --identify-sizes, and the cost of one minutiae
comparison; beside it, the rest of an identify's work stage by stage on one thread (the probe's preparation
with the fast network, its forward pass and cylinders, the search without its minutiae stage, and LEADER on
the probe, which an unclear answer adds). Start-up load time from each store is measured at --load-size.
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


def bench_identify(n: int, rng: np.random.Generator, repeats: int = 30) -> dict[str, object]:
    """Identify's search as the service runs it for a probe with a mate enrolled, on the search thread's one
    core: the scan, the views, the descriptor grids, the minutiae sketches and the full comparison of the
    card's shortlists. The gallery is `n` random templates (search vectors, int8 grids of the card's shape,
    random minutiae sets of 50 hand-made and 35 LEADER points, as `benchmarks.load` seeds) plus the mate;
    the probe is a real synthetic print embedded by the bundled model with the fast probe network."""
    from fingerprint.model.embedder import TorchEmbedder
    from fingerprint.model.minutiae.match import one_blas_thread
    from lab.benchmarks.load import _random_minutiae
    from lab.synth.export import encode_png, synthetic_impressions

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the service's search thread
    one_blas_thread()
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000, threads=1, fast_probes=True)
    meta = embedder.meta
    idx = GalleryIndex(meta.embedding_dim, Comparator.from_card(meta), initial_capacity=n + 1)
    vectors, shape = unit(n, meta.embedding_dim, rng), meta.grid_shape()
    fuses = meta.minutiae_weight > 0 or meta.leader_weight > 0
    for i in range(n):
        idx.add(f"t{i}", f"s{i}", None, vectors[i], None if shape is None else rng.integers(-60, 61, shape, np.int8),
                _random_minutiae(rng, meta.leader_weight > 0) if fuses else None)
    impressions = synthetic_impressions([424242], 2, seed=3)[0]
    mate = embedder.embed([embedder.preprocess(encode_png(impressions[1]), None)])[0]
    idx.add("mate", "mate", None, mate.views[0], mate.dense, mate.minutiae)
    t0 = time.perf_counter()
    while idx.warm_sketches(5000):
        pass
    warm = time.perf_counter() - t0
    png = encode_png(impressions[0])
    prepared = embedder.preprocess(png, None, probe=True)
    probe = embedder.embed([prepared])[0]
    minutiae = None if probe.minutiae is None or not fuses else idx.comparator.probe(probe.minutiae)
    top = idx.search_views(probe.views, 5, probe.dense, minutiae)  # warm
    full = timed(lambda: idx.search_views(probe.views, 5, probe.dense, minutiae), repeats)
    # the rest of an identify's work, each stage on one thread as served: where the CPU goes
    stages = {"probe_preprocess": timed(lambda: embedder.preprocess(png, None, probe=True), repeats),
              "probe_forward_pass": timed(lambda: embedder.embed([prepared]), repeats),
              "search_before_minutiae": timed(lambda: idx.search_views(probe.views, 5, probe.dense, None), repeats)}
    if minutiae is not None and probe.minutiae is not None:
        found, source = probe.minutiae, prepared.leader_source
        stages["probe_cylinders"] = timed(lambda: idx.comparator.probe(found), repeats)
        if source is not None:  # what an unclear answer adds: LEADER on the probe, then searched again
            stages["leader_on_probe"] = timed(lambda: embedder.refine(found, source), max(3, repeats // 10))
    torch.set_num_threads(threads)
    return {
        "templates": n + 1,
        "identify_search_ms_p50": round(float(np.percentile(full, 50)) * 1000, 2),
        "identify_search_ms_p99": round(float(np.percentile(full, 99)) * 1000, 2),
        "mate_ranked_first": bool(top) and top[0].template_id == "mate",
        "bytes_per_template": idx.bytes_per_template,
        "sketches_built_s": round(warm, 1),
        "stages_ms_p50": {k: round(float(np.percentile(v, 50)) * 1000, 2) for k, v in stages.items()},
    }


def bench_comparison(repeats: int = 200) -> dict[str, float]:
    """One minutiae comparison (LEADER's set, as identify's full comparison): building a template's
    cylinders, then comparing the probe's (built once) with them."""
    from lab.benchmarks.load import _random_minutiae

    rng = np.random.default_rng(3)
    matcher = Comparator.from_card(read_meta(DEFAULT_WEIGHTS)).minutiae
    probe_set, other = (_random_minutiae(rng, True).leader_template() for _ in range(2))
    assert probe_set is not None and other is not None
    probe = matcher.probe(probe_set)
    build = timed(lambda: matcher.cylinders_of([other]), repeats)
    built = matcher.cylinders_of([other])[0]
    compare = timed(lambda: matcher.score(probe, built), repeats)
    return {"minutiae": len(other.points), "build_ms_p50": round(float(np.percentile(build, 50)) * 1000, 3),
            "compare_ms_p50": round(float(np.percentile(compare, 50)) * 1000, 3)}


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


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--load-size", type=int, default=20_000)
    ap.add_argument("--postgres-url", default=None)
    ap.add_argument("--identify-sizes", type=int, nargs="*", default=[10_000],
                    help="gallery sizes at which identify's whole search (shortlists and minutiae) is timed")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    report: dict[str, object] = {"threads": args.threads, "dim": args.dim,
                                 "search": [bench_size(n, args.dim, args.k, rng) for n in args.sizes],
                                 "identify": [bench_identify(n, rng) for n in args.identify_sizes],
                                 "minutiae_comparison": bench_comparison()}
    with tempfile.TemporaryDirectory() as tmp:
        loads = {"sqlite": asyncio.run(load_time(SqliteStore(Path(tmp) / "g.sqlite3"), args.load_size, args.dim))}
    if args.postgres_url:
        from fingerprint.gallery.postgres_store import PostgresStore

        loads["postgres"] = asyncio.run(load_time(PostgresStore(args.postgres_url), args.load_size, args.dim))
    report["store_load"] = loads
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
