"""Time from a probe's image bytes to what it is compared with (decode, preprocess, both minutiae
extractions — the card's probe network where it has one — and the forward pass), one image at a time on
one core, for one or more models in the same run (compare their ratio, not seconds).

    python -m lab.benchmarks.features ../shared/fingerprints/FVC2002_DB1_B --weights a.pt b.pt --images 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.model.allocator import keep_freed_memory
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.weights import DEFAULT_WEIGHTS


def per_image_ms(embedder: TorchEmbedder, images: list[bytes], dpi: float) -> list[float]:
    embedder.embed([embedder.preprocess(images[0], dpi, probe=True)])  # warm
    times = []
    for data in images:
        start = time.perf_counter()
        embedder.embed([embedder.preprocess(data, dpi, probe=True)])
        times.append((time.perf_counter() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--weights", nargs="+", type=Path, default=[DEFAULT_WEIGHTS])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--fast-probes", action="store_true", help="each model also with FAST_PROBES, in the same run")
    ap.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"),
                    help="INFERENCE_PRECISION; auto (as served): bfloat16 where the CPU computes it natively")
    args = ap.parse_args(argv)
    keep_freed_memory()  # as the server does
    torch.set_num_threads(1)
    embedders = [TorchEmbedder(w, 16_000_000, threads=1, precision=args.precision, fast_probes=fast)
                 for w in args.weights for fast in ((False, True) if args.fast_probes else (False,))]
    report: dict[str, dict[str, float]] = {}  # "folder: model[ fast probes]": p50 and p90 ms
    for folder in args.dirs:
        dpi = folder_dpi(folder)
        images = [i.path.read_bytes() for i in scan_folder(folder)[: args.images]]
        for embedder in embedders:
            t = per_image_ms(embedder, images, dpi)
            mode = " fast probes" if embedder.distinct_probe_minutiae else ""
            p50, p90 = float(np.percentile(t, 50)), float(np.percentile(t, 90))
            report[f"{folder.name}: {embedder.meta.version}{mode}"] = {"images": len(t), "p50_ms": p50, "p90_ms": p90}
            print(f"{folder.name}: model {embedder.meta.version}{mode}: p50 {p50:.0f} ms, "
                  f"p90 {p90:.0f} ms per image (one core)", flush=True)
    return report


if __name__ == "__main__":
    main()
