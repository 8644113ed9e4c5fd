"""The card's synthetic impostor tail: the floor under the gallery's own threshold estimate.

A gallery's impostor sample can run low: most of its pairs may cross sensors or populations (a pooled
gallery of seven sensors: 0.0606, against which 0.16-0.32 % of one sensor's impostors passed on three of
them), or it may be small. Synthetic fingers from this project's generator (seeds no network trained on)
are look-alike-rich: their impostor scores run higher than any real set's measured. Scored exactly as the
service scores its gallery (`ImpostorEstimator`, same sample size), their tail is written into the card,
and the service never decides below it (gallery/impostors.py). No real print is involved.

    python -m lab.evaluation.synthetic_impostors --fingers 1000 --cache runs/growth [--write-card]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from pathlib import Path

from fingerprint.gallery.impostors import SAMPLE_CAPACITY, ImpostorEstimator, ImpostorSample, SyntheticTail
from fingerprint.gallery.index import GalleryIndex
from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import Embedding
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS, meta_path
from lab.benchmarks.growth_gallery import synthetic_fingers
from lab.evaluation.prepared_cache import embedder_for

FIRST_SEED = 9_000_000  # beyond the training bank's seeds and the growth benchmark's distractors (8,000,000)
KEPT_SHARE = 0.02  # of the sample's highest scores the card keeps: floors for TARGET_FMR up to 2 % x the tail factor


def impostor_tail(fingers: list[Embedding], comparator: Comparator, dim: int) -> SyntheticTail:
    """The synthetic fingers enrolled as one gallery, its impostor sample as the service would keep it,
    and that sample's highest KEPT_SHARE scores."""
    index = GalleryIndex(dim, comparator)
    for j, e in enumerate(fingers):
        index.add(f"synthetic/{j}", f"synthetic/{j}", None, e.views[0], e.dense, e.minutiae)
    sample = ImpostorSample(SAMPLE_CAPACITY)
    asyncio.run(ImpostorEstimator(index, sample, busy_share=1.0).catch_up())
    top = sorted(sample.scores, reverse=True)[: math.ceil(KEPT_SHARE * len(sample.scores))]
    return SyntheticTail(len(sample.scores), tuple(round(s, 6) for s in top))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fingers", type=int, default=1000)
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED)
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--cache", type=Path, default=Path("runs/growth"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embed-only", action="store_true", help="fill the cache (e.g. one process per seed range)")
    ap.add_argument("--write-card", action="store_true", help="store the tail in the card beside --weights")
    ap.add_argument("--prepared-cache", type=Path, default=None,
                    help="keep prepared prints here (lab.evaluation.prepared_cache): another network re-uses them")
    args = ap.parse_args()
    one_blas_thread()
    embedder = embedder_for(args.weights, 16_000_000, args.prepared_cache, threads=args.threads, precision="float32")
    fingers = synthetic_fingers(args.fingers, embedder, args.cache, args.first_seed)
    if args.embed_only:
        return
    tail = impostor_tail(fingers, Comparator.from_card(embedder.meta), embedder.meta.embedding_dim)
    print(f"{len(fingers)} fingers, {tail.scores} impostor scores, highest {list(tail.top[:5])}")
    if args.write_card:
        card = meta_path(args.weights)
        meta = json.loads(card.read_text())
        meta.update(synthetic_impostor_scores=tail.scores, synthetic_impostor_top="TOP")
        # the scores on one line: the card stays readable
        card.write_text(json.dumps(meta, indent=2).replace('"TOP"', json.dumps(list(tail.top))) + "\n")
        print(f"written to {card}")

if __name__ == "__main__":
    main()
