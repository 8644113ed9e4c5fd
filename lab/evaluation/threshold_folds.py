"""The card's impostor tail factor (gallery/impostors.py), chosen leave-one-sensor-out.

The service decides at the score that TARGET_FMR / factor of its gallery's own impostor scores reach.
One gallery of every given set's fingers is built as the service builds it (lab/benchmarks/gallery_growth.py:
each finger enrolled from its first impression that the minimum accepts, the impostor sample drawn as the
running service draws it), and every other impression verifies against its own finger and the next nine
of its set. For each factor, each set's FNMR and FMR at the threshold it gives. A set's reported figure
is the one at the factor that did best on the other sets, each set weighing the same: a mean FMR at or
below the target, then the lowest mean FNMR (if no factor holds the target, the lowest mean FMR). The
factor the card ships is the one all sets choose.

    python -m lab.evaluation.threshold_folds ../shared/fingerprints/* --cache runs/growth [--write]

A factor is bounded by the sample: its tail needs MIN_TAIL / (TARGET_FMR / factor) scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fingerprint.gallery.impostors import DecisionThreshold
from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS, meta_path
from fingerprint.settings import Settings
from lab.benchmarks.gallery_growth import Attempt, verify_attempts
from lab.benchmarks.growth_gallery import build, load_sets


def rates(attempts: list[Attempt], threshold: float) -> dict[str, float]:
    genuine = [a for a in attempts if a.genuine]
    impostor = [a for a in attempts if not a.genuine]
    return {"fnmr": sum(a.score < threshold for a in genuine) / max(1, len(genuine)),
            "fmr": sum(a.score >= threshold for a in impostor) / max(1, len(impostor)),
            "false_matches": sum(a.score >= threshold for a in impostor), "impostor_attempts": len(impostor)}


def choose(results: dict[float, dict[str, dict[str, float]]], target_fmr: float, without: str | None) -> float:
    """The factor that did best on every set but `without` (None: on every set)."""
    def merit(factor: float) -> tuple[bool, float, float, float]:
        sets = [r for name, r in results[factor].items() if name != without]
        fmr = sum(r["fmr"] for r in sets) / len(sets)
        fnmr = sum(r["fnmr"] for r in sets) / len(sets)
        return (fmr > target_fmr, fmr if fmr > target_fmr else 0.0, fnmr, factor)
    return min(results, key=merit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--factors", default="1,1.5,2,3,4,5,6")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--target-fmr", type=float, default=0.001)
    ap.add_argument("--min-minutiae", type=int, default=Settings().min_enroll_minutiae)
    ap.add_argument("--cache", type=Path, default=Path("runs/growth"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--write", action="store_true", help="write the factor every set chooses into the card")
    args = ap.parse_args()
    one_blas_thread()
    embedder = TorchEmbedder(args.weights, 16_000_000, threads=args.threads, precision="float32")
    meta = embedder.meta
    prints = load_sets([d for d in args.dirs if d.is_dir()], embedder, args.cache)
    gallery = build(prints, [], Comparator.from_card(meta), args.target_fmr, meta, args.min_minutiae)
    names = sorted({p.set_name for p in prints})
    attempts = {name: verify_attempts(prints, gallery, name) for name in names}
    thresholds: dict[float, float] = {}
    for factor in [float(f) for f in args.factors.split(",")]:
        decision = DecisionThreshold(args.target_fmr, meta.threshold_fmr_1e3, None, gallery.sample, factor).estimate()
        if decision.source == "gallery":
            thresholds[factor] = decision.value
        else:
            print(f"factor {factor}: the sample's {len(gallery.sample.scores)} scores are fewer than its tail needs "
                  f"({decision.needed})")
    results = {f: {name: rates(attempts[name], t) for name in names} for f, t in thresholds.items()}
    print(f"{len(gallery.sample.scores)} impostor scores; per set FNMR / FMR % at each factor's threshold")
    for f, t in thresholds.items():
        print(f"  factor {f:g} ({t:.4f}): " + " ".join(
            f"{100 * r['fnmr']:.1f}/{100 * r['fmr']:.2f}" for r in results[f].values()))
    report: dict[str, Any] = {"impostor_scores": len(gallery.sample.scores), "thresholds": thresholds,
                              "results": results, "chosen": {}}
    for name in names:
        f = choose(results, args.target_fmr, name)
        r = results[f][name]
        report["chosen"][name] = f
        line = (f"{name}: factor {f:g} chosen without it, FNMR {100 * r['fnmr']:.1f} % FMR {100 * r['fmr']:.2f} % "
                f"({r['false_matches']} of {r['impostor_attempts']})")
        if 1.0 in results:
            line += f"; factor 1: FNMR {100 * results[1.0][name]['fnmr']:.1f} % FMR {100 * results[1.0][name]['fmr']:.2f} %"
        print(line)
    shipped = choose(results, args.target_fmr, None)
    report["shipped"] = shipped
    print(f"every set chooses factor {shipped:g}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))
    if args.write:
        card = meta_path(args.weights)
        data = json.loads(card.read_text())
        data["impostor_tail_factor"] = shipped
        card.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {card}: impostor_tail_factor {shipped:g}")


if __name__ == "__main__":
    main()
