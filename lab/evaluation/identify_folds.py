"""Identify's shortlists and enrolment's minutiae minimum, chosen leave-one-sensor-out.

Every combination is measured as the service identifies (lab/benchmarks/gallery_growth.py: one gallery
of every given set's fingers, each enrolled from its first impression that the minimum accepts, every
other impression probing). A set's reported figure is the one of the combination that did best on the
other sets: the highest mean rank-1 over them (each set weighing the same), then the fewest probes named
wrongly at the default threshold, then the shorter shortlists (cheaper identify: the minutiae shortlist,
then the part of it the hand-made minutiae also re-score, then the grid shortlist, a tenth of a millisecond
a candidate), then the lower minimum (fewer enrolments refused). The combination the service ships is the one all sets choose.

    python -m lab.evaluation.identify_folds ../shared/fingerprints/* --cache runs/growth

Reuses gallery_growth's cached embeddings (`--cache`); with `--out`, each combination is written as it is
measured and a run started again measures only what the file lacks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS
from lab.benchmarks.gallery_growth import measure_set
from lab.benchmarks.growth_gallery import build, load_sets

# (minutiae shortlist, enrolment minimum, hand-made minutiae shortlist, grid shortlist)
Combination = tuple[int, int, int, int]


def choose(results: dict[Combination, dict[str, dict[str, Any]]], without: str | None) -> Combination:
    """The combination that did best on every set but `without` (None: on every set)."""
    def merit(combo: Combination) -> tuple[float, float, int, int, int, int]:
        sets = [r for name, r in results[combo].items() if name != without]
        rank1 = sum(r["rank1"] for r in sets) / len(sets)
        wrong = sum(r["identify_named_wrong"] for r in sets) / len(sets)
        return (-rank1, wrong, combo[0], combo[2], combo[3], combo[1])
    return min(results, key=merit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--shortlists", default="8,16,32")
    ap.add_argument("--minima", default="0,10,12")
    ap.add_argument("--own-shortlists", default="2,8,32", help="of the minutiae shortlist, how many the hand-made "
                    "minutiae also re-score after LEADER's")
    ap.add_argument("--grid-shortlists", default="64", help="of the view shortlist, how many the grids re-score")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--target-fmr", type=float, default=0.001)
    ap.add_argument("--cache", type=Path, default=Path("runs/growth"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    one_blas_thread()
    embedder = TorchEmbedder(args.weights, 16_000_000, threads=args.threads, precision="float32")
    card = Comparator.from_card(embedder.meta)
    prints = load_sets([d for d in args.dirs if d.is_dir()], embedder, args.cache)
    names = sorted({p.set_name for p in prints})
    results: dict[Combination, dict[str, dict[str, Any]]] = {}
    if args.out and args.out.exists():
        saved = json.loads(args.out.read_text())["results"]
        results = {tuple(int(x) for x in k.split(",")): r for k, r in saved.items() if k.count(",") == 3}  # type: ignore[misc]
    shortlists = [int(x) for x in args.shortlists.split(",")]
    minima = [int(x) for x in args.minima.split(",")]
    owns = [int(x) for x in args.own_shortlists.split(",")]
    grids = [int(x) for x in args.grid_shortlists.split(",")]
    wanted = [(s, o, g) for s in shortlists for o in owns for g in grids]
    for minimum in minima:
        if all((s, minimum, o, g) in results for s, o, g in wanted):
            continue
        gallery = build(prints, [], card, args.target_fmr, embedder.meta, minimum)
        for shortlist, own, grid in wanted:
            if (shortlist, minimum, own, grid) in results:
                continue
            gallery.index.comparator = dataclasses.replace(card, minutiae_shortlist=shortlist,
                                                           own_minutiae_shortlist=own, grid_shortlist=grid)
            results[(shortlist, minimum, own, grid)] = {n: measure_set(prints, gallery, n, verify=False) for n in names}
            _write(args.out, results, {}, None)
            row = results[(shortlist, minimum, own, grid)]
            print(f"shortlist {shortlist:3d} minimum {minimum:2d} own {own:2d} grid {grid:3d} threshold "
                  f"{gallery.threshold:.4f}: rank-1 "
                  + " / ".join(f"{100 * row[n]['rank1']:.1f}" for n in names) + ", named wrongly "
                  + " / ".join(str(len(row[n]["wrong_names"])) for n in names), flush=True)
    print("held-out set: combination chosen by the others -> its rank-1, named wrongly, fingers not enrolled")
    chosen = {}
    results = {c: r for c, r in results.items()
               if c[0] in shortlists and c[1] in minima and c[2] in owns and c[3] in grids}
    for name in names:
        combo = choose(results, name)
        r = results[combo][name]
        chosen[name] = {"shortlist": combo[0], "minimum": combo[1], "own_shortlist": combo[2],
                        "grid_shortlist": combo[3], **r}
        print(f"  {name}: shortlist {combo[0]}, minimum {combo[1]}, own {combo[2]}, grid {combo[3]} -> rank-1 "
              f"{100 * r['rank1']:.1f} %, "
              f"{len(r['wrong_names'])} named wrongly, {r['fingers_not_enrolled']} not enrolled")
    everyone = choose(results, None)
    print(f"all sets choose: shortlist {everyone[0]}, minimum {everyone[1]}, own {everyone[2]}, grid {everyone[3]}")
    _write(args.out, results, chosen, everyone)


def _write(out: Path | None, results: dict[Combination, dict[str, dict[str, Any]]], chosen: dict[str, Any],
           everyone: Combination | None) -> None:
    if out is None:
        return
    shipped = None if everyone is None else {"shortlist": everyone[0], "minimum": everyone[1],
                                             "own_shortlist": everyone[2], "grid_shortlist": everyone[3]}
    out.write_text(json.dumps({"chosen": chosen, "all": shipped,
                               "results": {",".join(map(str, c)): r for c, r in results.items()}}, indent=1))


if __name__ == "__main__":
    main()
