"""How much would alignment buy? An experiment for the next step of the model (issue 3).

Scores every pair of a `<finger>_<impression>` folder three ways with the same network:
1. `embedding`: the probe's shifted views against the template (the search vector's comparison);
2. `dense`: the network's 10x10 grid of local descriptors (before the head), compared cell by cell
   over the best of 7x7 relative shifts, normalised by the overlap (model/dense.py; what models
   with `dense_matching` verify and re-rank with);
3. `dense+rotation`: the same, the probe also rotated by each of --angles degrees.
It prints all-pairs EER per set. Dense templates are 12.8 KB instead of 512 bytes and rotation costs
one forward pass per angle, so this measures the ceiling of alignment before building it into the
service. Example (the figures in MODEL_CARD.md "What to try next"):

    .venv/bin/python -m benchmarks.alignment ../shared/fingerprints/FVC2000_DB1_B ../shared/fingerprints/FVC2002_DB1_B
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.model.dataset import folder_dpi, scan_folder
from fingerprint.model.decode import decode_grayscale, to_target_dpi
from fingerprint.model.dense import dense_grid, grid_scores, to_int8
from fingerprint.model.evaluation.metrics import eer
from fingerprint.model.network import FingerprintNet
from fingerprint.model.preprocess import prepare
from fingerprint.model.weights import DEFAULT_WEIGHTS, load_weights


def _rotate(t: torch.Tensor, degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    grid = F.affine_grid(theta[None].expand(len(t), 2, 3), list(t.shape), align_corners=False)
    return F.grid_sample(t, grid, align_corners=False)


def _dense(model: FingerprintNet, t: torch.Tensor) -> torch.Tensor:
    return to_int8(dense_grid(model.features(t), t)[0])


def _eer_all_pairs(scores: np.ndarray, fingers: np.ndarray) -> float:
    iu = np.triu_indices(len(fingers), 1)
    same = fingers[iu[0]] == fingers[iu[1]]
    return eer(scores[iu][same], scores[iu][~same])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--angles", default="-20,-10,10,20")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, meta = load_weights(args.weights)
    angles = [float(a) for a in args.angles.split(",") if a]
    for folder in args.folders:
        imps = scan_folder(folder)
        fingers = np.array([i.finger for i in imps])
        with torch.inference_mode():
            grays = [to_target_dpi(decode_grayscale(i.path.read_bytes(), 16_000_000), folder_dpi(folder)) for i in imps]
            t = torch.cat([prepare(torch.from_numpy(g.astype(np.float32))[None, None]).tensor for g in grays])
            views = model.shifted_views(t, meta.probe_shift_radius)
            emb = torch.einsum("jkd,id->ijk", views, views[:, 0]).amax(dim=2)
            g0 = _dense(model, t)
            dense = grid_scores(g0, g0)
            rotated = dense.clone()
            for angle in angles:
                rotated = torch.maximum(rotated, grid_scores(g0, _dense(model, _rotate(t, angle))))
        sym = [(name, torch.maximum(s, s.T).numpy()) for name, s in
               (("embedding", emb), ("dense", dense), ("dense+rotation", rotated))]
        print(folder.name, "  ".join(f"{name} EER {_eer_all_pairs(s, fingers) * 100:.2f}%" for name, s in sym))


if __name__ == "__main__":
    main()
