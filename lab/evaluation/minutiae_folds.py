"""Which minutiae the comparison fuses, and at which weights, chosen by sensor folds.

For every set: the grid cosines of the served network, the hand-made minutiae's scores and LEADER's
(pyfing's pretrained extractor, `fingerprint.model.leader`), every ordered pair scored as verify scores
it, cached per set. Then each set's figures come from the weights that did best on the *other* sets
(leave one sensor out; sets of the same people, `real_data.SAME_PEOPLE`, are held out together): no set's
figure is chosen on it.

    python -m lab.evaluation.minutiae_folds score ../shared/fingerprints/* --cache runs/folds [--prepared-cache runs/prepared]
    python -m lab.evaluation.minutiae_folds choose --cache runs/folds
    python -m lab.evaluation.minutiae_folds card --cache runs/folds --own 9 --leader 14 --version 5.0.0 --probe-minutiae

`card` writes the weights and the prior thresholds into the bundled card: each FMR's threshold is the
higher of the training sensors' (the Neurotech sets, whose prints trained the network; no evaluation
set) impostor thresholds, one sensor at a time (pooling sensors would promise an FMR one sensor does
not keep). The prior only decides until a gallery holds enough impostor scores of its own.
`--probe-minutiae` names the bundled network distilled from LEADER (`lab.distillation`) in the card, for
FAST_PROBES; `--reads` the versions whose templates it reads. `fold-card` makes a fold network (one trained
without some sensors) score as the bundled model, for those sensors' out-of-sample figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.calibration.folder import embedded, prepared_or_blank
from fingerprint.calibration.metrics import eer, fnmr_at_fmr
from fingerprint.calibration.protocol import all_pairs, fvc_pairs
from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS
from lab.evaluation.prepared_cache import embedder_for
from lab.training.real_data import SAME_PEOPLE


def score_set(folder: Path, embedder: TorchEmbedder) -> dict[str, np.ndarray]:
    """Every pair's grid cosine and minutiae scores, each as verify computes it: the probe's minutiae as
    found against the enrolled print's as stored (whole pixels), every ordered pair ([probe, enrolled])."""
    imps = scan_folder(folder)
    dpi = folder_dpi(folder)
    embeddings = embedded(embedder, [prepared_or_blank(embedder, imp.path.read_bytes(), dpi) for imp in imps])
    card = Comparator.from_card(embedder.meta)
    found = [e.minutiae for e in embeddings]
    if any(m is None or m.leader is None for m in found):
        raise ValueError(f"{embedder.meta.version}'s card does not find both minutiae sets")
    stored = [m.as_stored() for m in found]  # type: ignore[union-attr]
    leaders = [m.leader_template() for m in found]  # type: ignore[union-attr]
    return {
        "grid": Comparator(card.grid, card.minutiae, 0.0).all_pairs(embeddings),
        "ours": card.minutiae.cross_pairs(found, stored),  # type: ignore[arg-type]
        "leader": card.minutiae.cross_pairs(leaders, [t.leader_template() for t in stored]),  # type: ignore[arg-type, misc]
        "fingers": np.array([i.finger for i in imps]),
        "impressions": np.array([i.impression for i in imps]),
        "leader_count": np.array([len(t.points) for t in leaders]),  # type: ignore[union-attr]
        "ours_count": np.array([len(m.points) for m in found]),  # type: ignore[union-attr]
    }


def fused(parts: dict[str, np.ndarray], w_ours: float, w_leader: float) -> np.ndarray:
    """The comparison's cosine scale: grid cosine and each minutiae score (mapped to [-1, 1]) weighted."""
    return (parts["grid"] + w_ours * (2 * parts["ours"] - 1) + w_leader * (2 * parts["leader"] - 1)) / (1 + w_ours + w_leader)


def figures(parts: dict[str, np.ndarray], cos: np.ndarray) -> dict[str, float | None]:
    fingers = [str(f) for f in parts["fingers"]]
    out: dict[str, float | None] = {}
    for name, pairs in (("fvc", fvc_pairs(fingers, [int(i) for i in parts["impressions"]])), ("all", all_pairs(fingers))):
        # a pair's first image is enrolled, its second the probe: cos[probe, enrolled]
        gen = cos[pairs.genuine[:, 1], pairs.genuine[:, 0]]
        imp = cos[pairs.impostor[:, 1], pairs.impostor[:, 0]]
        out[f"{name}_eer"] = eer(gen, imp)
        out[f"{name}_fmr1000"] = fnmr_at_fmr(gen, imp, 0.001)
    return out


WEIGHTS_OURS = (0.0, 2.0, 4.0, 6.0, 9.0)
WEIGHTS_LEADER = (0.0, 2.0, 4.0, 6.0, 9.0, 14.0, 20.0)


def choose(cache: Path, unscored: tuple[str, ...] = ()) -> dict[str, object]:
    """Per set, the weights best on the sets that share no people with it. `unscored`: sets not in the
    cache that still get their choice (e.g. scored afterwards by a fold network of their own)."""
    sets = {p.stem: dict(np.load(p)) for p in sorted(cache.glob("*.npz"))}
    grid = list(itertools.product(WEIGHTS_OURS, WEIGHTS_LEADER))
    # the objective a weight pair is chosen by: mean all-pairs EER plus mean FNMR at FMR 0.1 % over the sets it may see
    cost = {name: {w: figures(parts, fused(parts, *w)) for w in grid} for name, parts in sets.items()}

    def objective(names: list[str], w: tuple[float, float]) -> float:
        return float(np.mean([cost[n][w]["all_eer"] + (cost[n][w]["all_fmr1000"] or 1.0) for n in names]))

    report: dict[str, object] = {}
    for held in [*sets, *(u for u in unscored if u not in sets)]:
        # a set that shares people with the held one is held out with it (the same fingers, other sensors)
        group = SAME_PEOPLE.get(held, held)
        others = [n for n in sets if SAME_PEOPLE.get(n, n) != group]
        best = min(grid, key=lambda w: objective(others, w))
        report[held] = {"chosen_on_others": best, "chosen_on": others}
        if held in sets:
            report[held] |= {"held_out": cost[held][best], "served_4.0": cost[held][(6.0, 0.0)],
                             "leader_only": cost[held][(0.0, 20.0)]}
    report["all_sets_choice"] = min(grid, key=lambda w: objective(list(sets), w))
    return report


PRIOR_SETS = ("Neurotech_CrossMatch_Sample_DB", "Neurotech_UareU_sample_DB")


def write_card(cache: Path, own: float, leader: float, version: str, probe_minutiae: bool = False,
               reads: tuple[str, ...] = ()) -> dict[str, object]:
    from fingerprint.calibration.metrics import threshold_at_fmr
    from fingerprint.model.weights import leader_path, meta_path, probe_minutiae_path, sha256_file

    thresholds = {0.01: 0.0, 0.001: 0.0}
    for name in PRIOR_SETS:
        parts = dict(np.load(cache / f"{name}.npz"))
        pairs = all_pairs([str(f) for f in parts["fingers"]])
        impostor = Comparator.to_score(fused(parts, own, leader)[pairs.impostor[:, 1], pairs.impostor[:, 0]])
        for fmr in thresholds:
            thresholds[fmr] = max(thresholds[fmr], threshold_at_fmr(impostor, fmr))
    path = meta_path(DEFAULT_WEIGHTS)
    card = json.loads(path.read_text())
    card.update(version=version, minutiae_weight=own, leader_weight=leader,
                leader_sha256=sha256_file(leader_path(DEFAULT_WEIGHTS)),
                threshold_fmr_1e2=thresholds[0.01], threshold_fmr_1e3=thresholds[0.001], reads_templates_of=list(reads),
                probe_minutiae_sha256=sha256_file(probe_minutiae_path(DEFAULT_WEIGHTS)) if probe_minutiae else "",
                notes=f"weights chosen leave-one-sensor-out (lab/evaluation/minutiae_folds.py); thresholds: the higher of "
                      f"{' and '.join(PRIOR_SETS)}' impostors'")
    path.write_text(json.dumps(card, indent=2) + "\n")
    return card


# what a fold network's card takes from the bundled one: how prints are compared and decided, not the network
SCORING_FIELDS = ("minutiae_window", "minutiae_direction_offsets", "leader_sha256", "probe_minutiae_sha256",
                  "impostor_tail_factor", "threshold_fmr_1e2", "threshold_fmr_1e3")


def fold_card(weights: Path, own: float, leader: float) -> dict[str, object]:
    """Make a fold network (trained without some sensors, `lab train`) score as the bundled model does, at
    the fusion weights chosen without its held-out sets: the bundled card's scoring fields and minutiae
    networks beside it. Its floor is its own, written next by `synthetic_impostors --write-card` (the
    bundled one's is left out); the prior thresholds are the bundled ones, below any floor measured."""
    import shutil

    from fingerprint.model.weights import leader_path, meta_path, probe_minutiae_path

    shipped = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    card = json.loads(meta_path(weights).read_text())
    card.update({k: shipped[k] for k in SCORING_FIELDS}, minutiae_weight=own, leader_weight=leader,
                synthetic_impostor_scores=0, synthetic_impostor_top=[],
                notes=f"{card.get('notes', '')}; scored as {shipped['version']} at fusion weights {own:g} / {leader:g}")
    for path in (leader_path, probe_minutiae_path):
        shutil.copy(path(DEFAULT_WEIGHTS), path(weights))
    meta_path(weights).write_text(json.dumps(card, indent=2) + "\n")
    return card


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("dirs", nargs="+", type=Path)
    s.add_argument("--cache", type=Path, required=True)
    s.add_argument("--prepared-cache", type=Path, default=None, help="prepared prints (lab.evaluation.prepared_cache)")
    c = sub.add_parser("choose")
    c.add_argument("--cache", type=Path, required=True)
    c.add_argument("--unscored", default="", help="comma-separated sets not in the cache to choose for")
    w = sub.add_parser("card")
    w.add_argument("--cache", type=Path, required=True)
    w.add_argument("--own", type=float, required=True)
    w.add_argument("--leader", type=float, required=True)
    w.add_argument("--version", required=True)
    w.add_argument("--probe-minutiae", action="store_true", help="probes find LEADER's minutiae with the bundled student")
    w.add_argument("--reads", default="", help="comma-separated versions whose templates this card reads")
    f = sub.add_parser("fold-card")
    f.add_argument("weights", type=Path)
    f.add_argument("--own", type=float, required=True)
    f.add_argument("--leader", type=float, required=True)
    args = parser.parse_args()
    if args.command == "score":
        one_blas_thread()
        args.cache.mkdir(parents=True, exist_ok=True)
        embedder = embedder_for(DEFAULT_WEIGHTS, 16_000_000, args.prepared_cache, threads=1, precision="float32")
        for folder in args.dirs:
            out = args.cache / f"{folder.name}.npz"
            if out.exists() or not folder.is_dir():
                continue  # resumable: a set already scored is kept
            start = time.perf_counter()
            np.savez(out, **score_set(folder, embedder))
            print(f"{folder.name}: {time.perf_counter() - start:.0f} s", flush=True)
    elif args.command == "fold-card":
        print(json.dumps(fold_card(args.weights, args.own, args.leader), indent=1))
    elif args.command == "card":
        reads = tuple(v for v in args.reads.split(",") if v)
        print(json.dumps(write_card(args.cache, args.own, args.leader, args.version, args.probe_minutiae, reads), indent=1))
    else:
        unscored = tuple(v for v in args.unscored.split(",") if v)
        print(json.dumps(choose(args.cache, unscored), indent=1, default=str))


if __name__ == "__main__":
    main()
