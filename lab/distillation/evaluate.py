"""The student's minutiae in place of LEADER's, per set, beside LEADER's, from the sensor-fold caches of
`lab.evaluation.minutiae_folds score` (grid, hand-made and LEADER scores of every pair).

Each print's minutiae come from the window and foreground the service uses; the pairs are scored by the
served minutiae matcher and fused at the card's weights (the student takes LEADER's). Two ways: the
student on both sides of a pair, and the student on the probe only against LEADER's minutiae enrolled
(enrolment can afford LEADER; a probe cannot). The student never saw an FVC print, so every FVC figure
is out of sample.

    python -m lab.distillation.evaluate ../shared/fingerprints/FVC200* --student runs/distill-v3/student.pt --folds runs/folds \
        --out runs/distill-v3/eval.json
    python -m lab.distillation.evaluate --choose runs/distill-v3/eval.json runs/distill-v4/eval.json

`--choose` picks among students by sensor folds: each set's figure is that of the student whose fused EER
(probe against LEADER enrolled) averaged over the *other* sets is lowest, so no set chooses its own.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
import torch

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.model.comparator import Comparator
from fingerprint.model.decode import ImageRejected, decode_grayscale, to_target_dpi
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.leader import MinutiaeFinder, finder, window_minutiae
from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.minutiae.extract import MASK_CELL_PX
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.student import THRESHOLD, StudentNet, find
from fingerprint.model.weights import DEFAULT_WEIGHTS, load_leader
from lab.evaluation.minutiae_folds import figures, fused


def _origin(gray: np.ndarray, window: int, outer: int) -> tuple[int, int]:
    from fingerprint.model.preprocess import prepare

    with torch.inference_mode():
        p = prepare(torch.from_numpy(gray.astype(np.float32))[None, None], window, outer)
    assert p.origin is not None
    return int(p.origin[0, 0]), int(p.origin[0, 1])


def _templates(folder: Path, embedder: TorchEmbedder, find: MinutiaeFinder) -> tuple[list[MinutiaeTemplate], float]:
    """Each print's minutiae as the service would store them, and the median seconds `find` took a window."""
    meta = embedder.meta
    templates, seconds = [], []
    for imp in scan_folder(folder):
        try:
            data = imp.path.read_bytes()
            prep = embedder.preprocess(data, folder_dpi(folder))
            gray = to_target_dpi(decode_grayscale(data, 16_000_000), folder_dpi(folder))
            assert prep.minutiae is not None
            start = time.perf_counter()
            points = window_minutiae(find, gray, _origin(gray, meta.window, meta.minutiae_crop()),
                                     prep.minutiae.foreground, MASK_CELL_PX)
            seconds.append(time.perf_counter() - start)
            templates.append(MinutiaeTemplate(points, prep.minutiae.foreground))
        except ImageRejected:
            templates.append(MinutiaeTemplate(np.zeros((0, 3), np.float32), np.zeros((25, 25), bool)))
    return templates, float(np.median(seconds))


def _leader_templates(folder: Path, embedder: TorchEmbedder, cache: Path) -> list[MinutiaeTemplate]:
    path = cache / f"{folder.name}.pkl"
    if not path.exists():
        net = load_leader(DEFAULT_WEIGHTS, embedder.meta)
        assert net is not None, "the bundled card fuses LEADER's minutiae"
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(_templates(folder, embedder, finder(net))[0]))
    loaded: list[MinutiaeTemplate] = pickle.loads(path.read_bytes())
    return loaded


def choose(reports: list[Path]) -> None:
    runs = {path: json.loads(path.read_text()) for path in reports}
    sets = sorted(set.intersection(*(set(r) for r in runs.values())))

    def mean_eer(path: Path, names: list[str]) -> float:
        return float(np.mean([runs[path][n]["student_probe"]["all_eer"] for n in names]))

    for name in sets:
        others = [n for n in sets if n != name]
        best = min(runs, key=lambda path: mean_eer(path, others))
        r = runs[best][name]
        print(f"{name}: {best} (chosen on the other {len(others)} sets): all-pairs EER student probe "
              f"{100 * r['student_probe']['all_eer']:.2f} %, LEADER {100 * r['leader']['all_eer']:.2f} %")
    print(f"shipped: {min(runs, key=lambda path: mean_eer(path, sets))} (all sets)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--choose", nargs="+", type=Path, default=None, help="evaluation reports (--out) to choose among")
    ap.add_argument("--student", type=Path, default=Path("runs/distill/student.pt"))
    ap.add_argument("--folds", type=Path, default=Path("runs/folds"))
    ap.add_argument("--threshold", type=float, default=THRESHOLD)
    ap.add_argument("--leader-cache", type=Path, default=Path("runs/distill/fvc-leader"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.choose:
        choose(args.choose)
        return
    one_blas_thread()
    torch.set_num_threads(1)
    embedder = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000, threads=1, precision="float32")
    embedder._leader = None  # the hand-made minutiae and the foreground only: LEADER's scores are cached
    state = torch.load(args.student)
    net = StudentNet(state["width"]).eval()
    net.load_state_dict(state["net"])
    own, leader_w = embedder.meta.minutiae_weight, embedder.meta.leader_weight
    matcher = Comparator.from_card(embedder.meta).minutiae
    assert matcher is not None
    report = {}
    for folder in args.dirs:
        parts = dict(np.load(args.folds / f"{folder.name}.npz"))
        students, seconds = _templates(folder, embedder, lambda image: find(net, image, args.threshold))
        both = {**parts, "leader": matcher.all_pairs(students)}
        probe = {**parts, "leader": matcher.cross_pairs(students, _leader_templates(folder, embedder, args.leader_cache))}
        report[folder.name] = r = {
            "leader": figures(parts, fused(parts, own, leader_w)),
            "student": figures(both, fused(both, own, leader_w)),
            "student_probe": figures(probe, fused(probe, own, leader_w)),
            "leader_alone": figures(parts, fused(parts, 0.0, 20.0)),
            "student_alone": figures(both, fused(both, 0.0, 20.0)),
            "student_probe_alone": figures(probe, fused(probe, 0.0, 20.0)),
            "student_ms_per_window": round(seconds * 1000, 1),
        }
        eers = " / ".join(f"{100 * r[k]['all_eer']:.2f}" for k in ("leader", "student", "student_probe"))  # type: ignore[index]
        alone = " / ".join(f"{100 * r[k]['all_eer']:.2f}" for k in ("leader_alone", "student_alone", "student_probe_alone"))  # type: ignore[index]
        print(f"{folder.name}: all-pairs EER % LEADER / student / student probe vs LEADER enrolled: fused {eers}; "
              f"minutiae alone {alone}; student {seconds * 1000:.0f} ms a window", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
