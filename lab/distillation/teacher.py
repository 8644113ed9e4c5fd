"""LEADER's minutiae on training prints, the student's targets: one `.npz` per print (the 500 dpi image, its
minutiae and LEADER's smoothed minutia probability at every pixel, 0-255), written once and kept, so
labelling resumes where it stopped.

Only prints the serving network trains on are labelled (the Neurotech sets and synthetic fingers): every
FVC set stays unseen by the student as well, so each FVC figure is out of sample.

    python -m lab.distillation.teacher ../shared/fingerprints/Neurotech_* --synthetic 600 --out runs/distill/teacher-soft
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.model.decode import ImageRejected, decode_grayscale, to_target_dpi
from fingerprint.model.leader import LeaderForward, maps, minutiae_from_maps
from fingerprint.model.weights import DEFAULT_WEIGHTS, load_leader, read_meta

SYNTHETIC_SEEDS = 9_000_000  # outside the training bank's and the growth benchmark's distractor seeds


def label(net: LeaderForward, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) float32 x, y, direction (radians in the image's frame: x right, y down), ending (1) or not;
    and (H, W) uint8 LEADER's smoothed probability (what its threshold and suppression read) x 255."""
    out, top, left = maps(net, gray)
    h, w = gray.shape
    found = minutiae_from_maps(out, top, left, h, w).points
    minutiae = np.stack([found[:, 0], found[:, 1], np.remainder(-found[:, 2], 2 * math.pi), found[:, 3]], 1)
    smooth = np.round(np.clip(out[3, top : top + h, left : left + w], 0, 1) * 255).astype(np.uint8)
    return minutiae.astype(np.float32), smooth


def _prints(dirs: list[Path], synthetic: int) -> list[tuple[str, object]]:
    jobs: list[tuple[str, object]] = []
    for folder in dirs:
        jobs += [(f"{folder.name}__{i.path.stem}", (i.path, folder_dpi(folder))) for i in scan_folder(folder)]
    jobs += [(f"synthetic__{s}", s) for s in range(SYNTHETIC_SEEDS, SYNTHETIC_SEEDS + synthetic)]
    return jobs


def _image(source: object) -> np.ndarray:
    if isinstance(source, tuple):
        path, dpi = source
        return to_target_dpi(decode_grayscale(path.read_bytes(), 16_000_000), dpi)
    from lab.synth.export import synthetic_impressions

    return synthetic_impressions([int(source)], impressions=1, seed=int(source))[0][0]  # type: ignore[call-overload]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--synthetic", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/distill/teacher-soft"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from fingerprint.model.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    net = load_leader(DEFAULT_WEIGHTS, read_meta(DEFAULT_WEIGHTS))  # as served: sha256 checked, channels-last
    assert net is not None, "the bundled card fuses LEADER's minutiae"
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, src) for name, src in _prints(args.dirs, args.synthetic) if not (args.out / f"{name}.npz").exists()]
    start = time.perf_counter()
    for k, (name, source) in enumerate(jobs, 1):
        try:
            gray = _image(source)
        except ImageRejected:
            continue
        minutiae, smooth = label(net, gray)
        np.savez_compressed(args.out / f"{name}.npz", image=gray, minutiae=minutiae, smooth=smooth)
        if k % 50 == 0:
            print(f"{k}/{len(jobs)} labelled, {(time.perf_counter() - start) / k:.2f} s each", flush=True)


if __name__ == "__main__":
    main()
