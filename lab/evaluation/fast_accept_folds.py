"""FAST_ACCEPT and FAST_REJECT chosen leave-one-set-out: when may a fast probe's answer stand without LEADER?

With fast probes the service finds a probe's LEADER minutiae with the distilled network, and compares it
again on LEADER's own minutiae when its best score is between FAST_REJECT and FAST_ACCEPT times the
threshold it decides with (gallery/impostors.py `answer_is_clear`, applied here to whole score matrices
at once). Per set, every pair is scored both ways as verify scores it (probe as found, enrolled as
stored, the set's fold fusion weights); a margin's scores are the fast ones where the fast score reaches
margin x threshold or stays below reject x threshold, LEADER's elsewhere. The threshold stands in for what a gallery
of the set decides with (gallery/impostors.py): the score 0.1 % of its impostor pairs reach, or the card's
synthetic floor where that is higher.

Each set's margin is the smallest that keeps every other set's figures at LEADER's: all-pairs EER within
0.1 point, FNMR at the threshold within 0.5 point, FMR there within 0.02 point, rank-1 within one probe;
its reject margin the largest that, with that margin, still does. Its own figures there are then out of
sample. Identify (rank-1, each finger's first impression enrolled) re-scores a probe on LEADER's minutiae
when its best fast score is between reject and margin x threshold or a second finger's reaches the
threshold; the same probes with their own finger not enrolled show how often a probe with no mate is
spared LEADER.

    python -m lab.evaluation.fast_accept_folds ../shared/fingerprints/FVC* --folds F --prepared-cache runs/prepared \
        --scores-cache runs/fast-accept-scores
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fingerprint.calibration.dataset import folder_dpi, scan_folder
from fingerprint.calibration.folder import embedded, prepared_or_blank
from fingerprint.calibration.metrics import cmc, eer
from fingerprint.calibration.protocol import all_pairs, fvc_pairs, identification_split
from fingerprint.gallery.impostors import SyntheticTail
from fingerprint.model.comparator import Comparator
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta
from lab.evaluation.prepared_cache import embedder_for
from lab.evaluation.report import fold_comparators

MARGINS = (0.0, 1.0, 1.1, 1.2, 1.3, 1.5, 1.75, 2.0)  # 0: the distilled network always decides
REJECTS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # 0: a fast answer below the threshold never stands
_EER_SLACK, _FNMR_SLACK, _FMR_SLACK, _RANK1_SLACK = 0.001, 0.005, 0.0002, 0.015  # rank-1: one probe of 70


def _of_pairs(m: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """`m[probe, enrolled]` of each pair, its second image the probe (as calibration/folder.py reads pairs)."""
    picked: np.ndarray = m[pairs[:, 1], pairs[:, 0]]
    return picked


@dataclass(frozen=True)
class SetScores:
    leader: np.ndarray  # (N, N) scores in [0, 1], probe minutiae found by LEADER
    fast: np.ndarray  # the same with the distilled network's
    fingers: list[str]
    impressions: list[int]
    floor: float  # the card's synthetic floor at the served target (0 without one)

    @property
    def threshold(self) -> float:
        impostor = _of_pairs(self.leader, all_pairs(self.fingers).impostor)
        return max(float(np.quantile(impostor, 0.999)), self.floor)


def figures(s: SetScores, margin: float, reject: float = 0.0) -> dict[str, float]:
    """The set's figures where a fast answer stands when it clears `margin` x t or stays below `reject` x t
    (answer_is_clear), LEADER's elsewhere."""
    t = s.threshold
    accepted = (s.fast >= margin * t) | (s.fast < reject * t) if margin > 0 else np.ones_like(s.fast, bool)
    cascade = np.where(accepted, s.fast, s.leader)
    pairs = all_pairs(s.fingers)
    gen, imp = _of_pairs(cascade, pairs.genuine), _of_pairs(cascade, pairs.impostor)
    gallery, probes = identification_split(s.fingers, s.impressions)
    fast_rows, leader_rows = s.fast[np.ix_(probes, gallery)], s.leader[np.ix_(probes, gallery)]
    ranked = -np.sort(-fast_rows, axis=1)
    # identify's answer stands when one candidate clears margin x t and no other reaches t, or none reaches reject x t
    clear = ((ranked[:, 0] >= margin * t) & (ranked[:, 1] < t)) | (ranked[:, 0] < reject * t)
    refined = ~clear if margin > 0 else np.zeros(len(probes), bool)
    rows = np.where(refined[:, None], leader_rows, fast_rows)
    labels = np.array(s.fingers)
    # the same probes with their own finger not enrolled: how many of them LEADER is spared
    others = labels[probes][:, None] != labels[gallery][None, :]
    best_other = np.where(others, fast_rows, -np.inf).max(1)
    fvc = fvc_pairs(s.fingers, s.impressions)
    ordered = np.array(s.fingers)[:, None] != np.array(s.fingers)[None, :]  # every impostor pair, both ways
    return {"eer": eer(gen, imp), "fvc_eer": eer(_of_pairs(cascade, fvc.genuine), _of_pairs(cascade, fvc.impostor)),
            "verify_fmr": float((cascade[ordered] >= t).mean()), "fnmr": float((gen < t).mean()), "fmr": float((imp >= t).mean()),
            "rank1": float(cmc(rows, labels[probes], labels[gallery], ranks=1)[0]),
            "fast_genuine": float(_of_pairs(accepted, pairs.genuine).mean()),
            "fast_impostor": float(_of_pairs(accepted, pairs.impostor).mean()),
            "fast_identify": float(1.0 - refined.mean()),
            "fast_no_mate": float((best_other < reject * t).mean()) if margin > 0 else 1.0, "threshold": t}


def keeps_leaders(at: dict[str, float], leader: dict[str, float]) -> bool:
    return (at["eer"] <= leader["eer"] + _EER_SLACK and at["fnmr"] <= leader["fnmr"] + _FNMR_SLACK
            and at["fmr"] <= leader["fmr"] + _FMR_SLACK and at["rank1"] >= leader["rank1"] - _RANK1_SLACK)


def cached_scores(cache: Path | None, folder: Path, weights: Path, comparator: Comparator | None,
                  prepared_cache: Path | None, precision: str) -> SetScores:
    """`score_set`, kept in `cache` under the set, the weights' sha256, the fusion weights and the precision:
    the margins are chosen from these matrices alone, and scoring a set is most of a run."""
    if cache is None:
        return score_set(folder, weights, comparator, prepared_cache, precision)
    sha = read_meta(weights).sha256[:12]  # the card alone: loading the networks for it was a load a set
    fusion = "card" if comparator is None else f"{comparator.minutiae_weight:g}-{comparator.leader_weight:g}"
    path = cache / f"{folder.name}-{sha}-{fusion}-{precision}.npz"
    if path.exists():
        d = np.load(path)
        return SetScores(d["leader"], d["fast"], [str(f) for f in d["fingers"]], [int(i) for i in d["impressions"]],
                         float(d["floor"]))
    s = score_set(folder, weights, comparator, prepared_cache, precision)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, leader=s.leader, fast=s.fast, fingers=np.array(s.fingers), impressions=np.array(s.impressions),
             floor=s.floor)
    return s


def score_set(folder: Path, weights: Path, comparator: Comparator | None, prepared_cache: Path | None,
              precision: str = "float32") -> SetScores:
    embedder = embedder_for(weights, 16_000_000, prepared_cache, precision=precision, fast_probes=True)
    comparing = comparator or Comparator.from_card(embedder.meta)
    imps = scan_folder(folder)
    dpi = folder_dpi(folder)
    prepared = [prepared_or_blank(embedder, i.path.read_bytes(), dpi) for i in imps]
    fast = [prepared_or_blank(embedder, i.path.read_bytes(), dpi, probe=True).minutiae for i in imps]
    embeddings = embedded(embedder, prepared)
    stored = [replace(e, minutiae=None if e.minutiae is None else e.minutiae.as_stored()) for e in embeddings]
    leader = comparing.all_pairs(stored, [e.minutiae for e in embeddings])
    quick = comparing.all_pairs(stored, fast)
    tail = SyntheticTail.of_card(embedder.meta)
    floor = tail.threshold(0.001 / embedder.meta.impostor_tail_factor) if tail else None
    return SetScores(Comparator.to_score(leader), Comparator.to_score(quick), [i.finger for i in imps],
                     [i.impression for i in imps], floor or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--folds", type=Path, default=None, help="fusion weights chosen without each set (report.py)")
    ap.add_argument("--prepared-cache", type=Path, default=None)
    ap.add_argument("--scores-cache", type=Path, default=None, help="each set's two score matrices, kept")
    ap.add_argument("--out", type=Path, default=Path("runs/fast-accept.json"))
    ap.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                    help="what the search and fast probe networks compute in (the service: bfloat16 where native)")
    args = ap.parse_args()
    one_blas_thread()
    meta_weights = fold_comparators(embedder_for(args.weights, 16_000_000, None).meta, args.folds) if args.folds else {}
    scores = {d.name: cached_scores(args.scores_cache, d, args.weights, meta_weights.get(d.name), args.prepared_cache,
                                    args.precision) for d in args.dirs}
    table = {name: {(m, r): figures(s, m, r) for m in (*MARGINS, np.inf) for r in REJECTS} for name, s in scores.items()}

    def chosen(names: list[str]) -> tuple[float, float]:
        """The smallest margin, then the largest reject margin with it, that keep every one of `names` at LEADER's."""
        def keeps(m: float, r: float) -> bool:
            return all(keeps_leaders(table[n][m, r], table[n][np.inf, 0.0]) for n in names)
        margin = next((m for m in MARGINS if m > 0 and keeps(m, 0.0)), MARGINS[-1])
        return margin, max(r for r in REJECTS if r == 0 or keeps(margin, r))

    every = chosen(list(table))
    report: dict[str, object] = {"margin_on_every_set": every[0], "reject_on_every_set": every[1]}
    print("set | margin / reject chosen without it | all-pairs EER % LEADER / fast / chosen | FVC EER % | FNMR % at t | "
          "FMR % at t (all impostor pairs both ways) | rank-1 % | answered by the fast network: genuine / impostor "
          "pairs, identify probes, identify probes with no mate enrolled")
    for name, by_margin in table.items():
        margin, reject = chosen([n for n in table if n != name])
        own, lead, fast = by_margin[margin, reject], by_margin[np.inf, 0.0], by_margin[0.0, 0.0]
        report[name] = {"margin": margin, "reject": reject, "chosen": own, "leader": lead, "fast": fast}
        print(f"{name} | {margin:g} / {reject:g} | {100 * lead['eer']:.2f} / {100 * fast['eer']:.2f} / {100 * own['eer']:.2f} | "
              f"{100 * lead['fvc_eer']:.2f} / {100 * fast['fvc_eer']:.2f} / {100 * own['fvc_eer']:.2f} | "
              f"{100 * lead['fnmr']:.1f} / {100 * fast['fnmr']:.1f} / {100 * own['fnmr']:.1f} | "
              f"{100 * lead['verify_fmr']:.2f} / {100 * fast['verify_fmr']:.2f} / {100 * own['verify_fmr']:.2f} | "
              f"{100 * lead['rank1']:.1f} / {100 * fast['rank1']:.1f} / {100 * own['rank1']:.1f} | "
              f"{100 * own['fast_genuine']:.0f} / {100 * own['fast_impostor']:.0f} / {100 * own['fast_identify']:.0f} / "
              f"{100 * own['fast_no_mate']:.0f}")
    print(f"on every set: {every[0]:g} / {every[1]:g} (what the card's FAST_ACCEPT / FAST_REJECT defaults should be)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
