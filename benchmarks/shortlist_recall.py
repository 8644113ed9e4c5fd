"""Identify's shortlist recall in a large gallery: is the mate among the 64 the grids re-score?

Identify scans the gallery with the probe's search vector, re-scores the best 256 with its shifted
views and hands the best 64 to the descriptor grids (`fingerprint/gallery/index.py`). A mate outside
those 64 is missed however well the grids match, so on large galleries this recall, not the grid
score, bounds identification. The gallery here is impression 1 of every finger of a split plus
`--distractors` synthetic prints (impressions of masters the training bank never drew); every other
impression is a probe. The held-out split of the training sets is scored first; folders given as
arguments (e.g. the FVC sets) are reported beside it.

    .venv/bin/python -m benchmarks.shortlist_recall ../shared/fingerprints/FVC2000_DB1_B ../shared/fingerprints/FVC2002_DB1_B
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fingerprint.gallery.index import DENSE_SHORTLIST, VIEW_SHORTLIST, GalleryIndex
from fingerprint.model.dataset import folder_dpi, scan_folder
from fingerprint.model.network import FingerprintNet
from fingerprint.model.synth.impressions import render_impressions
from fingerprint.model.synth.masters import generate_masters
from fingerprint.model.training.config import load_config
from fingerprint.model.training.loop import embed_with_grids
from fingerprint.model.training.real_data import load_500dpi, load_real, split_fingers, to_canvas
from fingerprint.model.weights import DEFAULT_WEIGHTS, load_weights

_PER_MASTER = 10


def distractor_vectors(model: FingerprintNet, count: int, window: int, outer: int | None = None,
                       pixel_statistics: bool = False) -> np.ndarray:
    """Search vectors of `count` synthetic prints: count / 10 unseen masters x 10 impressions."""
    gen = torch.Generator().manual_seed(5)
    out = []
    for start in range(0, count // _PER_MASTER, 100):
        seeds = list(range(9_100_000 + start, 9_100_000 + min(start + 100, count // _PER_MASTER)))
        masters = torch.round(generate_masters(seeds).ridges * 127) / 127
        for _ in range(_PER_MASTER):
            views, _ = embed_with_grids(model, render_impressions(masters, gen), 0, window, outer=outer,
                                        pixel_statistics=pixel_statistics)
            out.append(views[:, 0].numpy())
    return np.concatenate(out)


def mate_ranks(views: np.ndarray, labels: np.ndarray, distractors: np.ndarray) -> np.ndarray:
    """Rank of each probe's mate in the shortlist identify builds (`GalleryIndex.search_views`
    without a grid: the scan, then the views' re-scoring); a large number when it is not in it."""
    first: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        first.setdefault(label, i)
    index = GalleryIndex(views.shape[-1], initial_capacity=len(first) + len(distractors))
    for label, row in first.items():
        index.add(f"enrolled-{row}", f"finger-{label}", None, views[row, 0])
    for i, vector in enumerate(distractors):
        index.add(f"distractor-{i}", f"distractor-{i}", None, vector)
    ranks = []
    for p, label in enumerate(labels.tolist()):
        if first[label] == p:
            continue
        subjects = [hit.subject_id for hit in index.search_views(views[p], VIEW_SHORTLIST)]
        mate = f"finger-{label}"
        ranks.append(subjects.index(mate) + 1 if mate in subjects else 10**9)
    return np.array(ranks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--config", type=Path, default=Path("configs/train-dense-rot.toml"), help="the held-out split")
    ap.add_argument("--data", type=Path, default=Path("../shared/fingerprints"))
    ap.add_argument("--distractors", type=int, default=10_000)
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, meta = load_weights(args.weights)
    cfg = load_config(args.config)
    _, held_keys = split_fingers(args.data, cfg)
    held = load_real(args.data, cfg.real_sets, held_keys)
    splits = {"held-out": (held.canvases, held.labels.numpy())}
    for folder in args.folders:
        imps = scan_folder(folder)
        fingers = sorted({i.finger for i in imps})
        canvases = torch.stack([to_canvas(load_500dpi(i.path, folder_dpi(folder)))[0] for i in imps])
        splits[folder.name] = (canvases, np.array([fingers.index(i.finger) for i in imps]))
    distractors = distractor_vectors(model, args.distractors, meta.window, meta.minutiae_crop(), meta.pixel_statistics)
    for name, (canvases, labels) in splits.items():
        views, _ = embed_with_grids(model, canvases, meta.probe_shift_radius, meta.window, outer=meta.minutiae_crop(),
                                    pixel_statistics=meta.pixel_statistics)
        ranks = mate_ranks(views.numpy(), labels, distractors)
        within = {n: np.mean(ranks <= n) * 100 for n in (1, DENSE_SHORTLIST, VIEW_SHORTLIST)}
        print(f"{name}: {len(ranks)} probes, gallery {labels.max() + 1} fingers + {len(distractors)} distractors: "
              f"mate first {within[1]:.1f} %, in the {DENSE_SHORTLIST} re-scored {within[DENSE_SHORTLIST]:.1f} %, "
              f"in the {VIEW_SHORTLIST} {within[VIEW_SHORTLIST]:.1f} %",
              flush=True)


if __name__ == "__main__":
    main()
