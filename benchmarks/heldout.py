"""Grid-matching variants on the held-out split of the training sets: the split that may choose.

The FVC validation sets must never pick a model or a scoring parameter; the 18 held-out training
fingers may. They are few and their impressions are barely turned or displaced, so the split is also
scored on a copy with every print turned by a random angle of up to ±35° (seeded), the rotation a
touch sensor gives, and with `--max-move` on a "placed" copy: turned, moved by up to that many pixels
and cut to a 18x16 mm sensor area, so impressions share only part of the print. For each checkpoint
(a `runs/*/best.pt` or `checkpoint.pt`), each shift radius, set of probe-grid rotations and weight of
the search vector's score, it prints the all-pairs EER and the FNMR at FMR 1 % and 0.1 % on each
copy, scored exactly as the service scores. Example (how 3.1.2's served rotations and fusion weight
were chosen, see MODEL_CARD.md):

    .venv/bin/python -m benchmarks.heldout runs/train6/best.pt --rotations "" 20,10 30,20,10 --fusion 0,0.25,0.5,1

`--cut 0.5` adds a copy with half the prints cut to an off-centre sensor window (`sensor_cut`).
`--windows 320,384` scores a checkpoint at other crop windows than its recipe's. `--minutiae 0,5`
also fuses each grid score with the pair's minutiae score at those weights, as the service does
since 3.2.0 (the minutiae do not depend on the checkpoint: found once per copy). How a retrained
network is compared with the served one (card "What to try next"; labels are fingers across sensors):

    .venv/bin/python -m benchmarks.heldout runs/twins/best.pt runs/merged6/best.pt \\
        --rotations 30,20,10 --fusion 0.25 --shifts 4 --max-move 60 --minutiae 0,5
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.model.dense import GridMatcher
from fingerprint.model.evaluation.metrics import eer, fnmr_at_fmr, score_from_cosine
from fingerprint.model.minutiae import MinutiaeMatcher, fused_cosine
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.network import FingerprintNet
from fingerprint.model.synth.impressions import render_impressions
from fingerprint.model.synth.masters import generate_masters
from fingerprint.model.training.config import load_config
from fingerprint.model.training.loop import embed_with_grids
from fingerprint.model.training.pair_scores import grid_cosines, minutiae_all_pairs, pair_masks
from fingerprint.model.training.real_data import load_real, sensor_cut, split_fingers


def turned(canvases: torch.Tensor, max_degrees: float, seed: int) -> torch.Tensor:
    """Each print turned by its own random angle; the border is extended so no dark corners appear."""
    gen = torch.Generator().manual_seed(seed)
    a = (torch.rand(len(canvases), generator=gen) * 2 - 1) * math.radians(max_degrees)
    zero = torch.zeros_like(a)
    theta = torch.stack([torch.stack([a.cos(), -a.sin(), zero], 1), torch.stack([a.sin(), a.cos(), zero], 1)], 1)
    grid = F.affine_grid(theta, list(canvases.shape), align_corners=False)
    return F.grid_sample(canvases, grid, padding_mode="border", align_corners=False)


def placed(canvases: torch.Tensor, backgrounds: torch.Tensor, max_degrees: float, max_move: float,
           sensor: tuple[int, int], seed: int) -> torch.Tensor:
    """Each print turned by up to `max_degrees`, moved by up to `max_move` px in x and y, then cut to a
    centred `sensor` (height, width) area: a finger put down off-centre on a sensor that is not much
    larger than it, so two impressions share only part of their area (what large-print sensors do)."""
    gen = torch.Generator().manual_seed(seed)
    n, _, h, w = canvases.shape
    a = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(max_degrees)
    move = (torch.rand(n, 2, generator=gen) * 2 - 1) * max_move
    theta = torch.stack([torch.stack([a.cos(), -a.sin(), move[:, 0] * 2 / w], 1),
                         torch.stack([a.sin(), a.cos(), move[:, 1] * 2 / h], 1)], 1)
    grid = F.affine_grid(theta, list(canvases.shape), align_corners=False)
    bg = backgrounds.view(n, 1, 1, 1)
    out = F.grid_sample(canvases - bg, grid, padding_mode="zeros", align_corners=False) + bg
    top, left = (h - sensor[0]) // 2, (w - sensor[1]) // 2
    inside = torch.zeros(1, 1, h, w, dtype=torch.bool)
    inside[..., top : top + sensor[0], left : left + sensor[1]] = True
    return torch.where(inside, out, bg.expand_as(out))


def cut(canvases: torch.Tensor, backgrounds: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """`share` of the prints cut to an off-centre sensor window (`real_data.sensor_cut`: 14-18 x 12-16 mm,
    moved up to 4 mm along the finger), the rest whole: a fingertip-only impression against one that
    reaches the crease, which the placed copy's mild cut (18x16 mm, centred) rarely produces."""
    return sensor_cut(canvases, backgrounds, torch.Generator().manual_seed(seed), share)


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


def _rotation_set(spec: str) -> tuple[float, ...]:
    """'30,20,10' -> (-30, -20, -10, 10, 20, 30); '' -> no rotation."""
    steps = sorted({abs(float(x)) for x in spec.split(",") if x.strip()})
    return tuple([-s for s in reversed(steps)] + steps)


def _fnmr(genuine: np.ndarray, impostor: np.ndarray) -> str:
    """FNMR at FMR 1 % and 0.1 %: the EER of 18 fingers rests on ~5 genuine pairs, these on more."""
    out = []
    for fmr, label in ((0.01, "FMR100"), (0.001, "FMR1000")):
        value = fnmr_at_fmr(genuine, impostor, fmr)
        out.append(f"{label} {'n/a' if value is None else f'{value * 100:.2f}%'}")
    return " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--config", type=Path, default=Path("configs/train-dense-rot.toml"), help="split, sets, width")
    ap.add_argument("--data", type=Path, default=Path("../shared/fingerprints"))
    ap.add_argument("--shifts", default="3", help="comma-separated shift radii (cells)")
    ap.add_argument("--rotations", nargs="+", default=["", "20,10"], help="rotation sets, e.g. '30,20,10'")
    ap.add_argument("--fusion", default="0", help="comma-separated weights of the search vector's best-view cosine")
    ap.add_argument("--max-turn", type=float, default=35.0)
    ap.add_argument("--max-move", type=float, default=0.0, help="also score a placed copy (turned, moved, cut)")
    ap.add_argument("--cut", type=float, default=0.0,
                    help="also score a cut copy: this share of prints cut to an off-centre sensor window")
    ap.add_argument("--synthetic", type=int, default=0, help="also score N unseen synthetic fingers x 8")
    ap.add_argument("--windows", default="", help="comma-separated crop windows (default: the recipe's)")
    ap.add_argument("--minutiae", default="0", help="comma-separated weights of the minutiae score (0: grid only)")
    ap.add_argument("--minutiae-windows", default="0",
                    help="comma-separated windows minutiae are found in, around the crop (0: the crop; card '3.5.0')")
    ap.add_argument("--minutiae-offsets", default="",
                    help="comma-separated degrees each probe minutia's direction is also tried at (model card, '3.6.0')")
    args = ap.parse_args()
    cfg = load_config(args.config)
    torch.set_num_threads(cfg.threads)
    one_blas_thread()  # as the service compares minutiae (a 2nd BLAS thread made them ~10x slower)
    _, held_keys = split_fingers(args.data, cfg)
    held = load_real(args.data, cfg.real_sets, held_keys)
    splits = {
        "held-out": (held.canvases, held.labels),
        f"turned ±{args.max_turn:g}°": (turned(held.canvases, args.max_turn, cfg.seed), held.labels),
    }
    if args.max_move > 0:
        splits[f"placed ±{args.max_turn:g}° ±{args.max_move:g} px"] = (placed(
            held.canvases, held.backgrounds, args.max_turn, args.max_move, (360, 320), cfg.seed + 1), held.labels)
    if args.cut > 0:
        splits[f"cut {args.cut:g}"] = (cut(held.canvases, held.backgrounds, args.cut, cfg.seed + 2), held.labels)
    if args.synthetic > 0:
        splits[f"synthetic x{args.synthetic}"] = synthetic_split(args.synthetic, 8, cfg.seed)
    windows = [int(x) for x in args.windows.split(",") if x] or [cfg.window]
    shifts = [int(s) for s in args.shifts.split(",")]
    weights = [float(w) for w in args.fusion.split(",")]
    minutiae_weights = [float(w) for w in args.minutiae.split(",")]
    minutiae: dict[tuple[str, int], np.ndarray] = {}
    minutiae_matcher = MinutiaeMatcher(direction_offsets=[float(x) for x in args.minutiae_offsets.split(",") if x])
    for path in args.checkpoints:
        state = torch.load(path, weights_only=False)["model"]
        # each checkpoint's own width, so networks of different widths share one run
        model = FingerprintNet(cfg.embedding_dim, FingerprintNet.width_of(state), enhanced_input=cfg.enhanced_input)
        model.load_state_dict(state)
        for (name, (canvases, labels)), window, mwin in itertools.product(
                splits.items(), windows, [int(x) for x in args.minutiae_windows.split(",")]):
            outer = mwin or window
            # the network reads the centre of the outer window's preparation, as the service does
            views, grids = embed_with_grids(model, canvases, cfg.probe_shift_radius, window, outer=outer,
                                            pixel_statistics=cfg.pixel_statistics)
            if max(minutiae_weights) > 0 and (name, outer) not in minutiae:
                minutiae[name, outer] = minutiae_all_pairs(canvases, outer, pixel_statistics=cfg.pixel_statistics,
                                                           matcher=minutiae_matcher)
            iu, same, impostor = pair_masks(labels.numpy())
            for shift, spec, weight in itertools.product(shifts, args.rotations, weights):
                cos = grid_cosines(views, grids, GridMatcher(shift, _rotation_set(spec), weight))
                for mw in minutiae_weights:
                    sim = score_from_cosine(fused_cosine(cos, minutiae[name, outer], mw) if mw > 0 else cos)
                    genuine, impostors = sim[iu][same], sim[iu][impostor]
                    print(f"{path} {name}: window {window} minutiae window {outer} shift {shift} rotations "
                          f"[{spec or 'none'}] fusion {weight:g} minutiae {mw:g} EER {eer(genuine, impostors) * 100:.2f}% "
                          f"{_fnmr(genuine, impostors)}", flush=True)


if __name__ == "__main__":
    main()
