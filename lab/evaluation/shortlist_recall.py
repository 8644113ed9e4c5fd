"""How often identify's shortlists keep a probe's mate in a gallery of N templates, predicted per set.

Identify narrows the gallery in stages (fingerprint/model/comparator.py): the scan by the centred view
keeps the view shortlist, the best of the probe's views keeps the grid shortlist, the grids keep the
minutiae shortlist; a mate dropped at any stage cannot be named. The shared sets hold too few fingers
to show this, so it is predicted: every probe (enrolled as gallery_growth enrols: each finger's first
impression with enough minutiae) is compared, stage by stage, with every other subject's enrolled
template, and the share of them that outscore its mate is taken as the share of a large gallery that
would. In N templates the mate then ranks about share x N, and survives a stage that keeps S when that
is under S. Impostors are taken two ways: the real prints of the other shared subjects (sensors alike
in a real deployment) and gallery_growth's cached synthetic distractors (the growth benchmark's).

    python -m lab.evaluation.shortlist_recall ../shared/fingerprints/* --cache runs/growth --gallery 10000
"""

from __future__ import annotations

import argparse
import itertools
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import Embedding, TorchEmbedder
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS
from lab.benchmarks.growth_gallery import enrolled_prints, load_sets, subject_of


def outscoring_shares(probe: Embedding, mates: list[int], templates: list[Embedding], impostors: np.ndarray,
                      comparator: Comparator, grids: torch.Tensor) -> np.ndarray:
    """(3,): at each stage, the share of the `impostors` (a mask over `templates`) that outscore the
    probe's best-scoring mate: by the centred view (the scan), the best view (the grid shortlist) and the
    untilted grid (the minutiae shortlist: `Comparator.grid_shortlist_cosines`)."""
    vectors = np.stack([t.views[0] for t in templates]).astype(np.float32)
    centred = vectors @ probe.views[0].astype(np.float32)
    best = comparator.view_cosines(probe.views[None].astype(np.float32), vectors)[0]
    probe_grid, view_cos = torch.from_numpy(probe.dense)[None], torch.from_numpy(best)
    grid = (view_cos if comparator.grid is None else comparator.grid.ranking_scores(probe_grid, grids, view_cos)).numpy()
    return np.array([(s[impostors] > s[mates].max()).mean() for s in (centred, best, grid)])


def survives(shares: np.ndarray, gallery: int, shortlists: tuple[int, int, int]) -> np.ndarray:
    """(P,) whether each probe's mate, outscored by `shares` (P, 3) of a `gallery`-template gallery,
    stays inside every stage's shortlist."""
    return np.all(shares * gallery < np.array(shortlists), axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("runs/growth"))
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--min-minutiae", type=int, default=10)
    ap.add_argument("--gallery", type=int, default=10_000, help="templates in the predicted gallery")
    ap.add_argument("--views", default="256,1024", help="view shortlists to predict")
    ap.add_argument("--grids", default="64,256,1024", help="grid shortlists to predict")
    ap.add_argument("--minutiae", default="32", help="minutiae shortlists to predict")
    args = ap.parse_args()
    one_blas_thread()
    torch.set_num_threads(1)
    embedder = TorchEmbedder(args.weights, 16_000_000, threads=1, precision="float32")
    comparator = Comparator.from_card(embedder.meta)
    prints = load_sets([d for d in args.dirs if d.is_dir()], embedder, args.cache)
    synthetic: list[Embedding] = []
    for block in sorted((args.cache / embedder.meta.version).glob("distractors-*.pkl")):
        synthetic += pickle.loads(block.read_bytes())
    enrolled = enrolled_prints(prints, args.min_minutiae)
    subjects = [subject_of(*key) for key in enrolled]
    templates = [prints[k].embedding for k in enrolled.values()] + synthetic
    grids = torch.from_numpy(np.stack([t.dense for t in templates]))
    real = np.arange(len(templates)) < len(enrolled)
    shares: dict[str, list[np.ndarray]] = defaultdict(list)  # set -> per probe (real share, synthetic share)
    enrolled_ids = set(enrolled.values())
    for k, p in enumerate(prints):
        if k in enrolled_ids or (p.set_name, p.finger) not in enrolled:
            continue
        own = subject_of(p.set_name, p.finger)
        mates = [i for i, s in enumerate(subjects) if s == own]
        other = real.copy()
        other[mates] = False
        row = [outscoring_shares(p.embedding, mates, templates, other, comparator, grids)]
        if synthetic:
            row.append(outscoring_shares(p.embedding, mates, templates, ~real, comparator, grids))
        shares[p.set_name].append(np.stack(row))
    combos = list(itertools.product(*(tuple(int(x) for x in a.split(",")) for a in (args.views, args.grids, args.minutiae))))
    print(f"{len(enrolled)} enrolled, {len(synthetic)} synthetic distractors; share of a {args.gallery}-template "
          f"gallery whose mate survives the (view, grid, minutiae) shortlists, impostors real / synthetic")
    for name, rows in sorted(shares.items()):
        a = np.stack(rows)  # (P, sources, 3)
        cells = [f"{v}/{g}/{m} " + " / ".join(f"{100 * survives(a[:, s], args.gallery, (v, g, m)).mean():.1f}"
                                             for s in range(a.shape[1])) for v, g, m in combos if g <= v]
        print(f"  {name} ({len(a)} probes): " + "; ".join(cells))


if __name__ == "__main__":
    main()
