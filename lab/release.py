"""The release step: the weight of the minutiae score beside the grid's, chosen on the held-out training
fingers, and the card's thresholds calibrated for it.

For each weight it prints the all-pairs EER and FNMR at FMR 1 % / 0.1 % of the held-out split scored
as the service scores (the card's Comparator), and the FMR 1 % / 0.1 % thresholds of the impostor
pairs of one sensor (two sensors' prints of different fingers score lower, so pooling them would
promise an FMR one sensor does not keep). FVC sets never choose. `--write W` stores
`minutiae_weight = W` and those thresholds in the card beside the weights (the sha256 is unchanged).
`--synthetic N` also takes the impostor pairs of N synthetic masters the training bank never drew (4
impressions each) and keeps, for each FMR, the higher of the two thresholds. `make train` ends with it.

`--version` also sets `reads_templates_of` to `--reads` (comma-separated, empty by default): a version
that changes only the matcher or the thresholds reads its predecessor's templates; one with a new
network or template layout reads none (CHANGELOG.md). Held-out labels are fingers across sensors
(`real_data.finger_identity`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fingerprint.calibration.metrics import eer, fnmr_at_fmr, threshold_at_fmr
from fingerprint.model.comparator import Comparator
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.network import FingerprintNet
from fingerprint.model.weights import DEFAULT_WEIGHTS, ModelMeta, load_weights, meta_path
from lab.synth.impressions import render_impressions
from lab.synth.masters import generate_masters
from lab.training.config import load_config
from lab.training.loop import embed_with_grids
from lab.training.pair_scores import grid_cosines, minutiae_all_pairs, pair_masks
from lab.training.real_data import load_real, split_fingers

SYNTHETIC_SEED = 20261125


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/fingerprints"))
    ap.add_argument("--model", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--config", type=Path, default=Path("lab/recipes/fast/stage2.toml"),
                    help="the recipe whose held-out split is used")
    ap.add_argument("--weights", default="0,0.5,1,1.5,2")
    ap.add_argument("--write", type=float, default=None)
    ap.add_argument("--version", default=None, help="with --write: the card's new version")
    ap.add_argument("--reads", default="", help="with --version: comma-separated versions whose templates it reads")
    ap.add_argument("--synthetic", type=int, default=0,
                    help="also calibrate on this many unseen synthetic fingers x 4 impressions; each threshold is "
                         "the higher of the two (model card, '3.4.1')")
    ap.add_argument("--minutiae-window", type=int, default=0,
                    help="window minutiae are found in (0: the card's); written to the card with --write")
    ap.add_argument("--direction-offsets", default=None,
                    help="comma-separated degrees each probe minutia's direction is also tried at ('' none; default: "
                         "the card's); written to the card with --write (model card, '3.6.0')")
    args = ap.parse_args()
    torch.set_num_threads(2)
    one_blas_thread()  # as the service compares minutiae (a 2nd BLAS thread made them ~10x slower)
    cfg = load_config(args.config)
    model, meta = load_weights(args.model)
    if args.minutiae_window:
        meta = replace(meta, minutiae_window=args.minutiae_window)
    if args.direction_offsets is not None:
        meta = replace(meta, minutiae_direction_offsets=tuple(float(x) for x in args.direction_offsets.split(",") if x))
    if args.write is not None and meta.leader_weight > 0:
        raise SystemExit("this card fuses LEADER's minutiae: its weights and thresholds are written by "
                         "`python -m lab.evaluation.minutiae_folds card`")
    comparator = Comparator.from_card(meta)
    assert comparator.grid is not None, "the minutiae are fused with a dense-matching model's grid score"
    _, held_keys = split_fingers(args.data, cfg)
    held = load_real(args.data, cfg.real_sets, held_keys)
    views, grids = embed_with_grids(model, held.canvases, meta.probe_shift_radius, meta.window, outer=meta.minutiae_crop())
    grid_cos = grid_cosines(views, grids, comparator)
    minutiae = minutiae_all_pairs(held.canvases, meta.minutiae_crop(),
                                  matcher=meta.minutiae_matcher())
    iu, same, one_sensor = pair_masks(held.labels.numpy(), held.sensors.numpy())
    synthetic = _synthetic_scores(model, meta, args.synthetic) if args.synthetic else None
    source = "" if synthetic is None else " and the synthetic ones (the higher)"
    for w in [float(x) for x in args.weights.split(",")]:
        sim = _served(comparator, grid_cos, minutiae, w)
        gen, imp, cal = sim[iu][same], sim[iu][~same], sim[iu][one_sensor]
        f1, f01 = fnmr_at_fmr(gen, imp, 0.01), fnmr_at_fmr(gen, imp, 0.001)
        t2, t3 = threshold_at_fmr(cal, 0.01), threshold_at_fmr(cal, 0.001)
        if synthetic is not None:
            syn = _served(comparator, *synthetic, w)
            s2, s3 = threshold_at_fmr(syn, 0.01), threshold_at_fmr(syn, 0.001)
            print(f"  synthetic impostors ({len(syn)}): thresholds {s2:.4f} / {s3:.4f}; real held-out {t2:.4f} / {t3:.4f}")
            t2, t3 = max(t2, s2), max(t3, s3)
        print(f"weight {w}: held-out EER {100 * eer(gen, imp):.2f} %, FNMR@FMR1% {100 * (f1 or 0):.1f} %, "
              f"FNMR@FMR0.1% {100 * (f01 or 0):.1f} % ({len(gen)} genuine, {len(imp)} impostor pairs); "
              f"thresholds from the {len(cal)} one-sensor impostor pairs{source} {t2:.4f} / {t3:.4f}, FNMR there "
              f"{100 * (gen < t2).mean():.1f} / {100 * (gen < t3).mean():.1f} %", flush=True)
        if args.write == w:
            path = meta_path(args.model)
            data = json.loads(path.read_text())
            grid_note = data.get("notes", "").split(" (grid score)")[0].split(";")[0]
            data.update(minutiae_weight=w, threshold_fmr_1e2=t2, threshold_fmr_1e3=t3, minutiae_window=meta.minutiae_window,
                        minutiae_direction_offsets=list(meta.minutiae_direction_offsets),
                        notes=f"{grid_note} (grid score); {100 * eer(gen, imp):.2f}% with minutiae at weight {w:g}")
            if args.version:
                data.update(version=args.version, reads_templates_of=[v for v in args.reads.split(",") if v])
            path.write_text(json.dumps(data, indent=2) + "\n")
            print(f"wrote {path}: thresholds {t2:.4f} (FMR 1 %), {t3:.4f} (FMR 0.1 %)")


def _served(comparator: Comparator, grid_cos: np.ndarray, minutiae: np.ndarray, weight: float) -> np.ndarray:
    """Scores in [0, 1] as the service gives them with the minutiae at `weight` (0: the grid alone)."""
    candidate = replace(comparator, minutiae_weight=weight)
    return candidate.to_score(candidate.fuse(grid_cos, minutiae))


def synthetic_split(fingers: int, impressions: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Impressions of masters the training bank never drew (seeds from 9,000,000; the bank's start at
    1,000,000): the generator's full range of rotation, displacement, partial contact and pressure,
    on more fingers than the real split has. Canvases and finger labels."""
    ridges = generate_masters(list(range(9_000_000, 9_000_000 + fingers))).ridges
    masters = torch.round(ridges * 127) / 127  # as the training bank stores them
    gen = torch.Generator().manual_seed(seed)
    canvases = torch.cat([render_impressions(masters, gen) for _ in range(impressions)])
    labels = torch.arange(fingers).repeat(impressions)
    return canvases, labels


def _synthetic_scores(model: FingerprintNet, meta: ModelMeta, fingers: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cosines and minutiae scores of the impostor pairs of `fingers` synthetic masters the training
    bank never drew, 4 impressions each (synthetic_split), as the service scores them."""
    canvases, labels = synthetic_split(fingers, 4, SYNTHETIC_SEED)
    comparator = Comparator.from_card(meta)
    views, grids = embed_with_grids(model, canvases, meta.probe_shift_radius, meta.window, outer=meta.minutiae_crop())
    iu, _, impostor = pair_masks(labels.numpy())
    grid_cos = grid_cosines(views, grids, comparator)[iu][impostor]
    minutiae = minutiae_all_pairs(canvases, meta.minutiae_crop(),
                                  matcher=meta.minutiae_matcher())[iu][impostor]
    return grid_cos, minutiae


if __name__ == "__main__":
    main()
