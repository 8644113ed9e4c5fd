"""An embedder whose prepared images are kept on disk, for evaluating another network on the same prints.

What `TorchEmbedder.preprocess` makes of an image (the network's input crop, the hand-made minutiae and
LEADER's) does not depend on the embedding network: only on the image, its dpi and the card's window,
minutiae window and minutiae networks. LEADER is most of an evaluation's time (~0.5 s a print), so a
fold network (trained without some sensors) is judged on prints prepared once, here keyed by all of
those. The key does not cover this repository's preprocessing code: clear the folder when it changes.

    python -m lab.evaluation.prepared_cache ../shared/fingerprints/* --synthetic 1000 --first-seed 9000000 --cache runs/prepared

fills the cache ahead (e.g. beside a fold network's training) for `lab eval`, `lab.benchmarks.gallery_growth`
and `lab.evaluation.synthetic_impostors`, each given `--prepared-cache`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import pickle
import time
from pathlib import Path

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.model.decode import ImageRejected
from fingerprint.model.embedder import PreparedImage, TorchEmbedder
from fingerprint.model.weights import DEFAULT_WEIGHTS
from lab.synth.export import single_impression_blocks, single_impressions


class CachingEmbedder(TorchEmbedder):
    def __init__(self, weights: Path, max_pixels: int, folder: Path, threads: int = 0, precision: str = "auto",
                 fast_probes: bool = False) -> None:
        super().__init__(weights, max_pixels, threads=threads, precision=precision, fast_probes=fast_probes)
        self._folder = folder
        self.hits = self.misses = 0

    def _key(self, data: bytes, dpi: float | None, probe: bool) -> str:
        meta = self.meta
        probe_network = self.distinct_probe_minutiae and probe
        parts = [hashlib.sha256(data).hexdigest(), repr(dpi), str(meta.window), str(meta.minutiae_crop()),
                 str(meta.minutiae_weight > 0), meta.leader_sha256 if meta.leader_weight > 0 else "",
                 meta.probe_minutiae_sha256 if probe_network else "", str(self._max_pixels)]
        if probe_network and self.precision != "float32":  # the probe network computes in it (keys before it: float32)
            parts.append(self.precision)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def preprocess(self, data: bytes, dpi: float | None, probe: bool = False) -> PreparedImage:
        key = self._key(data, dpi, probe)
        path = self._folder / key[:2] / f"{key}.pkl"
        if path.exists():
            self.hits += 1
            cached = pickle.loads(path.read_bytes())
            if isinstance(cached, tuple):  # rejected: raised again, as on the first reading
                raise ImageRejected(*cached)
            prepared: PreparedImage = cached
            return prepared
        self.misses += 1
        try:
            prepared = super().preprocess(data, dpi, probe)
        except ImageRejected as rejected:
            self._store(path, (rejected.code, rejected.message))
            raise
        self._store(path, prepared)
        return prepared

    @staticmethod
    def _store(path: Path, value: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(pickle.dumps(value))
        partial.replace(path)  # a killed run leaves no half-written entry


def embedder_for(weights: Path, max_pixels: int, prepared_cache: Path | None, **options: object) -> TorchEmbedder:
    """A TorchEmbedder, caching its prepared images under `prepared_cache` when one is given."""
    if prepared_cache is None:
        return TorchEmbedder(weights, max_pixels, **options)  # type: ignore[arg-type]
    return CachingEmbedder(weights, max_pixels, prepared_cache, **options)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description="prepare prints ahead into a prepared cache")
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--synthetic", type=int, default=0, help="also this many synthetic fingers' single impressions")
    ap.add_argument("--first-seed", type=int, default=9_000_000)
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="the card whose windows and minutiae networks")
    ap.add_argument("--cache", type=Path, default=Path("runs/prepared"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    embedder = CachingEmbedder(args.weights, 16_000_000, args.cache, threads=args.threads, precision="float32")
    started = time.perf_counter()

    def prepare(images: list[bytes], dpi: float, what: str) -> None:
        for data in images:
            with contextlib.suppress(ImageRejected):
                embedder.preprocess(data, dpi)
        print(f"{what}: {len(images)} prints, {embedder.misses} prepared so far, {embedder.hits} cached "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

    for folder in [d for d in args.dirs if d.is_dir()]:
        prepare([i.path.read_bytes() for i in scan_folder(folder)], folder_dpi(folder), folder.name)
    for seeds in single_impression_blocks(args.synthetic, args.first_seed) if args.synthetic else []:
        prepare(single_impressions(seeds), 500.0, f"synthetic {seeds[0]}..{seeds[-1]}")


if __name__ == "__main__":
    main()
