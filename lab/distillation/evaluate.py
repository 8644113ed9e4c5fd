"""The student's minutiae in place of LEADER's, per set, beside LEADER's, from the sensor-fold caches of
`lab.evaluation.minutiae_folds score` (grid, hand-made and LEADER scores of every pair).

Each print's minutiae come from the window and foreground the service uses; the pairs are scored by the
served minutiae matcher and fused at the card's weights (the student takes LEADER's). The student never
saw an FVC print, so every FVC figure is out of sample.

    python -m lab.distillation.evaluate ../shared/fingerprints/FVC* --student runs/distill/student.pt --folds runs/folds
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.model.comparator import Comparator
from fingerprint.model.decode import ImageRejected, decode_grayscale, to_target_dpi
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.leader import window_minutiae
from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.minutiae.extract import MASK_CELL_PX
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS
from lab.distillation.student import StudentNet, find
from lab.evaluation.minutiae_folds import _origin, figures, fused


def student_scores(folder: Path, embedder: TorchEmbedder, net: StudentNet, threshold: float) -> tuple[np.ndarray, float]:
    meta = embedder.meta
    templates, seconds = [], []
    for imp in scan_folder(folder):
        try:
            data = imp.path.read_bytes()
            prep = embedder.preprocess(data, folder_dpi(folder))
            gray = to_target_dpi(decode_grayscale(data, 16_000_000), folder_dpi(folder))
            assert prep.minutiae is not None
            start = time.perf_counter()
            points = window_minutiae(lambda image: find(net, image, threshold), gray,
                                     _origin(gray, meta.window, meta.minutiae_crop()), prep.minutiae.foreground, MASK_CELL_PX)
            seconds.append(time.perf_counter() - start)
            templates.append(MinutiaeTemplate(points, prep.minutiae.foreground))
        except ImageRejected:
            templates.append(MinutiaeTemplate(np.zeros((0, 3), np.float32), np.zeros((25, 25), bool)))
    card = Comparator.from_card(meta)
    return card.minutiae.all_pairs(templates), float(np.median(seconds))  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--student", type=Path, default=Path("runs/distill/student.pt"))
    ap.add_argument("--folds", type=Path, default=Path("runs/folds"))
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    one_blas_thread()
    torch.set_num_threads(1)
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000, threads=1, precision="float32")
    embedder._leader = None  # the hand-made minutiae and the foreground only: LEADER's scores are cached
    state = torch.load(args.student)
    net = StudentNet(state["width"]).eval()
    net.load_state_dict(state["net"])
    own, leader_w = embedder.meta.minutiae_weight, embedder.meta.leader_weight
    report = {}
    for folder in args.dirs:
        parts = dict(np.load(args.folds / f"{folder.name}.npz"))
        student, ms = student_scores(folder, embedder, net, args.threshold)
        with_student = {**parts, "leader": student}
        report[folder.name] = {
            "leader": figures(parts, fused(parts, own, leader_w)),
            "student": figures(with_student, fused(with_student, own, leader_w)),
            "leader_alone": figures(parts, fused(parts, 0.0, 20.0)),
            "student_alone": figures(with_student, fused(with_student, 0.0, 20.0)),
            "student_ms_per_window": round(ms * 1000, 1),
        }
        r = report[folder.name]
        print(f"{folder.name}: all-pairs EER served {100 * r['leader']['all_eer']:.2f} % -> student "
              f"{100 * r['student']['all_eer']:.2f} % (alone {100 * r['leader_alone']['all_eer']:.2f} -> "
              f"{100 * r['student_alone']['all_eer']:.2f} %), student {ms * 1000:.0f} ms a window", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
