"""Identify's first stage from Milvus against the in-memory scan: recall of the shortlist and latency, same data.

    .venv/bin/python -m lab.benchmarks.engine --sizes 100000 1000000 [--uri http://milvus:19530]

For each gallery size (random unit vectors of the model's dimension, as lab.benchmarks.search): the
shortlist identify takes (the comparator's view shortlist, 1,024) from the index's in-memory scan and from
the engine (the service's own MilvusCollection and GalleryIndex with an EngineShortlist, so the same code
paths), for probes that are noisy copies of gallery vectors. Recall@shortlist is the share of the in-memory
shortlist the engine's also holds; the mate's rank in both; search p50/p99 of each; the time to write the
gallery to the engine. Without --uri, the engine is embedded milvus-lite in a temporary folder (one process
on this machine: a lower bound on what a Milvus cluster answers in, not its figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fingerprint.gallery.engine_shortlist import EngineShortlist, EngineSync
from fingerprint.gallery.index import GalleryIndex
from fingerprint.gallery.vector_engine import MilvusCollection
from fingerprint.model.comparator import VIEW_SHORTLIST
from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta
from lab.benchmarks.load import pct
from lab.benchmarks.search import build_index, unit


def _engine_index(vectors: np.ndarray) -> GalleryIndex:
    """The gallery's rows in an index whose first stage is the engine."""
    index = build_index(vectors)
    index.engine = EngineShortlist("milvus")
    return index


def _measure(memory: GalleryIndex, engine: GalleryIndex, probes: np.ndarray, mates: np.ndarray, k: int) -> dict[str, object]:
    recall, mem_ms, eng_ms, mate_mem, mate_eng = [], [], [], [], []
    for probe, mate in zip(probes, mates, strict=True):
        t0 = time.perf_counter()
        a = [h.template_id for h in memory.search(probe, k)]
        t1 = time.perf_counter()
        b = [h.template_id for h in engine.search(probe, k)]
        t2 = time.perf_counter()
        mem_ms.append(t1 - t0)  # seconds: pct reports milliseconds
        eng_ms.append(t2 - t1)
        recall.append(len(set(a) & set(b)) / len(a))
        mate_mem.append(a.index(str(mate)) if str(mate) in a else -1)
        mate_eng.append(b.index(str(mate)) if str(mate) in b else -1)
    return {"recall_at_shortlist_mean": round(float(np.mean(recall)), 5), "recall_at_shortlist_min": round(min(recall), 5),
            "mate_rank_equal": mate_mem == mate_eng, "mate_in_shortlist": sum(r >= 0 for r in mate_eng) / len(mates),
            "memory_ms_p50": round(pct(mem_ms, 50), 2), "memory_ms_p99": round(pct(mem_ms, 99), 2),
            "engine_ms_p50": round(pct(eng_ms, 50), 2), "engine_ms_p99": round(pct(eng_ms, 99), 2)}


def run_size(n: int, dim: int, probes: int, uri: str, k: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    vectors = unit(n, dim, rng)
    memory = build_index(vectors)
    engine = _engine_index(vectors)
    assert engine.engine is not None
    collection = MilvusCollection(uri, "", f"bench-{n}-{seed}", dim)
    sync = EngineSync.of(engine, lambda: collection, _NoStore(), 1.0)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    asyncio.run(_write(sync))
    written = time.perf_counter() - t0
    mates = rng.choice(n, size=probes, replace=False)
    noisy = vectors[mates] + 0.6 * unit(probes, dim, rng)  # a mate's view: cosine ~0.85 to it
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    engine.search(noisy[0], k)  # first call pays connection set-up
    row = {"templates": n, "shortlist": k, "probes": probes, "write_s": round(written, 1),
           "engine_state": engine.engine.status().state, **_measure(memory, engine, noisy, mates, k)}
    assert engine.engine.status().fallbacks == 0, "the engine failed to answer: the figures would be the in-memory scan's"
    return row


class _NoStore:
    async def template(self, template_id: str) -> None:
        return None


async def _write(sync: EngineSync) -> None:
    await sync.sweep()
    await sync.write()


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--shortlist", type=int, default=VIEW_SHORTLIST)
    ap.add_argument("--uri", default="", help="a Milvus address; default: embedded milvus-lite in a temporary folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    dim = read_meta(DEFAULT_WEIGHTS).embedding_dim
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.uri or str(Path(tmp) / "bench.db")
        rows = [run_size(n, dim, args.probes, uri, args.shortlist, args.seed) for n in args.sizes]
    report: dict[str, object] = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "engine": args.uri or "milvus-lite (embedded)", "dim": dim, "sizes": rows}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
