"""What NFIQ 2 adds to an enrolment: the extraction alone against the extraction with NFIQ 2 in its own
thread (as the service runs them), interleaved image by image in one run so the machine's noise hits both.

    python -m lab.benchmarks.enrolment_cost ../shared/fingerprints/FVC2002_DB2_B --dpi 569 --images 16
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.nfiq2 import nfiq2_score
from fingerprint.model.weights import DEFAULT_WEIGHTS

_PIXELS = 16_000_000


async def _one(embedder: TorchEmbedder, data: bytes, dpi: float | None, with_nfiq2: bool) -> float:
    def extract() -> None:
        embedder.embed([embedder.preprocess(data, dpi)])

    started = time.perf_counter()
    nfiq = asyncio.ensure_future(asyncio.to_thread(nfiq2_score, data, dpi, _PIXELS)) if with_nfiq2 else None
    await asyncio.to_thread(extract)
    if nfiq is not None:
        await nfiq
    return time.perf_counter() - started


async def measure(paths: list[Path], dpi: float | None, threads: int) -> dict[str, float]:
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, _PIXELS, threads)
    embedder.warm_up()
    alone, both = [], []
    for path in paths:
        data = path.read_bytes()
        alone.append(await _one(embedder, data, dpi, False))
        both.append(await _one(embedder, data, dpi, True))
    return {"images": len(paths), "p50_ms": statistics.median(alone) * 1000, "p50_with_nfiq2_ms": statistics.median(both) * 1000,
            "mean_ms": statistics.mean(alone) * 1000, "mean_with_nfiq2_ms": statistics.mean(both) * 1000}


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--dpi", type=float, default=None)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the service's default: one per core)")
    args = ap.parse_args(argv)
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".tif", ".png", ".bmp", ".wsq"))[: args.images]
    result = asyncio.run(measure(paths, args.dpi, args.threads))
    print(" ".join(f"{k}={v:.0f}" for k, v in result.items()))
    return result


if __name__ == "__main__":
    main()
