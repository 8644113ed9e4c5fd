"""How identification and the served default decision hold as the gallery grows.

Every finger of the given sets is enrolled (its first impression that enrolment accepts: at least
`--min-minutiae` minutiae, as MIN_ENROLL_MINUTIAE), every other impression probes, as
the service identifies it (`GalleryIndex.search_views`, shortlists included), with the threshold the
service decides with: the gallery's own estimate (gallery/impostors.py) at TARGET_FMR, from the
enrolled templates alone. Then synthetic distractor fingers (one impression each, never seen by the
network) are added and everything is measured again. Per set: rank-1, the share of probes for which
identify names the right finger at the default threshold, and the share for which it names a wrong one;
and verify's FNMR and FMR at that threshold (each probe against its own finger and against the next
nine fingers of its set). Sets that hold the same fingers under the same keys are one subject
namespace (a finger enrolled from both is one subject, never its own impostor): the two Neurotech sets,
and FVC2000_DB1_B with FVC2000_DB2_B (measured: each of DB1's ten first impressions scores highest against
DB2's finger of the same number, 0.25 against 0.04 on average for the others).

    python -m lab.benchmarks.gallery_growth ../shared/fingerprints/* --distractors 0,1000 --cache runs/growth

Embeddings are cached per set and per distractor block (`--cache`), so a run can be resumed or grown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fingerprint.gallery.impostors import (
    answer_is_clear,
    best_and_rival,
)
from fingerprint.model.comparator import Comparator, MinutiaeProbe
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS
from fingerprint.settings import Settings
from lab.benchmarks.growth_gallery import Gallery, Print, build, load_sets, subject_of, synthetic_fingers
from lab.evaluation.prepared_cache import embedder_for

TOP_K = 5  # identify's default: the hand-made minutiae re-score that many, and a rival is sought among them

@dataclass(frozen=True)
class Attempt:
    """One verify attempt: a probe (finger_impression) against the finger it claims."""

    probe: str
    finger: str
    genuine: bool
    score: float


def _probes(prints: list[Print], gallery: Gallery, set_name: str) -> list[Print]:
    """The set's probes: every impression not enrolled, of an enrolled finger."""
    enrolled_ids = set(gallery.enrolled.values())
    return [p for k, p in enumerate(prints) if p.set_name == set_name and k not in enrolled_ids
            and (set_name, p.finger) in gallery.enrolled]


def _leader_probe(comparator: Comparator, p: Print) -> MinutiaeProbe | None:
    """The probe on LEADER's own minutiae, where its first comparison was on the fast network's."""
    if p.probe_minutiae is None or p.embedding.minutiae is None or not comparator.fuses_minutiae:
        return None
    return comparator.probe(p.embedding.minutiae)


def _verify(gallery: Gallery, set_name: str, fingers: list[str], p: Print, probe: MinutiaeProbe | None,
            leader: MinutiaeProbe | None = None, fast_accept: float = 0.0, fast_reject: float = 0.0) -> list[Attempt]:
    """The probe against its own finger and the set's next nine, as verify scores them (again on `leader`
    where the first answer is not clear, with `fast_accept` > 0 and `fast_reject` as served)."""
    at = fingers.index(p.finger)
    out = []
    for finger in [fingers[(at + d) % len(fingers)] for d in range(min(10, len(fingers)))]:
        subject = subject_of(set_name, finger)
        hit = gallery.index.best_for_subject(p.embedding.views, subject, p.embedding.dense, probe)
        assert hit is not None
        if leader is not None and not answer_is_clear(hit.score, 0.0, gallery.threshold, fast_accept, fast_reject):
            hit = gallery.index.best_for_subject(p.embedding.views, subject, p.embedding.dense, leader)
            assert hit is not None
        out.append(Attempt(f"{p.finger}_{p.impression}", finger, finger == p.finger, hit.score))
    return out


def verify_attempts(prints: list[Print], gallery: Gallery, set_name: str) -> list[Attempt]:
    comparator = gallery.index.comparator
    fingers = sorted({f for s, f in gallery.enrolled if s == set_name})
    out = []
    for p in _probes(prints, gallery, set_name):
        found = p.probe_minutiae if p.probe_minutiae is not None else p.embedding.minutiae
        probe = comparator.probe(found) if comparator.fuses_minutiae and found is not None else None
        out += _verify(gallery, set_name, fingers, p, probe)
    return out


def measure_set(prints: list[Print], gallery: Gallery, set_name: str, verify: bool = True,
                fast_accept: float = 0.0, fast_reject: float = 0.0) -> dict[str, Any]:
    """One set's probes (every impression not enrolled, of an enrolled finger) against the whole gallery.
    With fast probes and `fast_accept` > 0, an answer that is not clear is searched again on LEADER's
    minutiae, as the service does (`answer_is_clear`)."""
    index, threshold, comparator = gallery.index, gallery.threshold, gallery.index.comparator
    refined = 0
    fingers = sorted({f for s, f in gallery.enrolled if s == set_name})
    rank1 = named = wrong = genuine_miss = genuine = impostor_hit = impostor = probes = 0
    wrong_names: list[str] = []
    false_matches: list[str] = []  # verify's impostor attempts accepted
    searches: list[float] = []  # seconds each identify's search took (its probe's cylinders built before)
    for p in _probes(prints, gallery, set_name):
        probes += 1
        e, own = p.embedding, subject_of(set_name, p.finger)
        found = p.probe_minutiae if p.probe_minutiae is not None else e.minutiae
        probe = comparator.probe(found) if comparator.fuses_minutiae and found is not None else None
        started = time.perf_counter()
        hits = index.search_views(e.views, TOP_K, e.dense, probe)
        searches.append(time.perf_counter() - started)
        leader = _leader_probe(comparator, p) if fast_accept > 0 else None
        if leader is not None and not answer_is_clear(*best_and_rival(hits), threshold, fast_accept, fast_reject):
            refined += 1
            hits = index.search_views(e.views, TOP_K, e.dense, leader)
        top = hits[0] if hits else None
        rank1 += top is not None and top.subject_id == own
        if top is not None and top.score >= threshold:
            named += top.subject_id == own
            if top.subject_id != own:
                wrong += 1
                wrong_names.append(f"{p.finger}_{p.impression} -> {top.template_id} ({top.score:.4f})")
        if not verify:
            continue
        for a in _verify(gallery, set_name, fingers, p, probe, leader, fast_accept, fast_reject):
            accepted = a.score >= threshold
            if a.genuine:
                genuine += 1
                genuine_miss += not accepted
            else:
                impostor += 1
                impostor_hit += accepted
                if accepted:
                    false_matches.append(f"{a.probe} -> {a.finger} ({a.score:.4f})")
    out: dict[str, Any] = {
        "probes": probes, "rank1": rank1 / probes, "identify_named_right": named / probes,
        "identify_named_wrong": wrong / probes, "wrong_names": wrong_names,
        "fingers_not_enrolled": len({p.finger for p in prints if p.set_name == set_name}) - len(fingers),
        "search_ms_p50": round(1000 * statistics.median(searches), 1) if searches else None,
        "identify_refined": refined / max(probes, 1)}
    if verify:
        out.update(verify_fnmr=genuine_miss / genuine, verify_fmr=impostor_hit / max(impostor, 1),
                   impostor_verifications=impostor, false_matches=false_matches)
    return out


def measure(prints: list[Print], gallery: Gallery, on_set: Callable[[str, dict[str, Any]], None] | None = None,
            verify: bool = True, fast_accept: float = 0.0, fast_reject: float = 0.0) -> dict[str, Any]:
    """Every set against `gallery`; `on_set(name, result)` as soon as each is measured (a gallery of 10,000
    takes minutes a set)."""
    out: dict[str, Any] = {"gallery": len(gallery.index), "threshold": gallery.threshold,
                           "threshold_source": gallery.source, "impostor_scores": len(gallery.sample.scores), "sets": {}}
    for name in sorted({p.set_name for p in prints}):
        out["sets"][name] = measure_set(prints, gallery, name, verify, fast_accept, fast_reject)
        if on_set:
            on_set(name, out["sets"][name])
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--distractors", default="0,1000")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--target-fmr", type=float, default=0.001)
    ap.add_argument("--cache", type=Path, default=Path("runs/growth"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--minutiae-shortlist", type=int, default=None,
                    help="candidates the minutiae re-score (default: the comparator's)")
    ap.add_argument("--sketch-shortlist", type=int, default=None,
                    help="of those, how many the minutiae compare in full after the sketches rank them (0: all)")
    ap.add_argument("--identify-only", action="store_true", help="skip the verify attempts (rank-1 and identify only)")
    ap.add_argument("--own-shortlist", type=int, default=None,
                    help="of those, how many the hand-made minutiae also re-score (default: the comparator's)")
    ap.add_argument("--min-minutiae", type=int, default=Settings().min_enroll_minutiae,
                    help="enrol each finger's first impression with at least this many minutiae (MIN_ENROLL_MINUTIAE)")
    ap.add_argument("--wrong-names", action="store_true", help="list each probe identify names wrongly")
    ap.add_argument("--false-matches", action="store_true", help="list each impostor attempt verify accepts")
    ap.add_argument("--fast-probes", action="store_true", help="probes' minutiae first from the distilled network")
    ap.add_argument("--fast-accept", type=float, default=0.0,
                    help="with --fast-probes: answers below this x the threshold are compared again on LEADER's "
                         "minutiae, as served (FAST_ACCEPT); 0: the distilled network alone")
    ap.add_argument("--fast-reject", type=float, default=0.0,
                    help="with --fast-accept: answers below this x the threshold stand as no match (FAST_REJECT)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one: beside other jobs, no spinning teams)")
    ap.add_argument("--prepared-cache", type=Path, default=None,
                    help="keep prepared prints here (lab.evaluation.prepared_cache): another network re-uses them")
    args = ap.parse_args(argv)
    one_blas_thread()
    embedder = embedder_for(args.weights, 16_000_000, args.prepared_cache, threads=args.threads, precision="float32",
                            fast_probes=args.fast_probes)
    comparator = Comparator.from_card(embedder.meta)
    if args.minutiae_shortlist:
        comparator = dataclasses.replace(comparator, minutiae_shortlist=args.minutiae_shortlist)
    if args.sketch_shortlist is not None:
        comparator = dataclasses.replace(comparator, sketch_shortlist=args.sketch_shortlist)
    if args.own_shortlist:
        comparator = dataclasses.replace(comparator, own_minutiae_shortlist=args.own_shortlist)
    prints = load_sets([d for d in args.dirs if d.is_dir()], embedder, args.cache)

    def show(name: str, r: dict[str, Any]) -> None:
        print(f"  {name}: rank-1 {100 * r['rank1']:.1f} %, identify right at threshold "
              f"{100 * r['identify_named_right']:.1f} % / wrong {100 * r['identify_named_wrong']:.1f} %"
              + (f", verify FNMR {100 * r['verify_fnmr']:.1f} % FMR {100 * r['verify_fmr']:.2f} %" if "verify_fnmr" in r else "")
              + f" ({r['probes']} probes, {100 * r['identify_refined']:.0f} % refined, search p50 {r['search_ms_p50']} ms, "
              f"{r['fingers_not_enrolled']} fingers not enrolled)", flush=True)
        for line in r["wrong_names"] if args.wrong_names else []:
            print(f"    named wrongly: {line}")
        for line in r.get("false_matches", []) if args.false_matches else []:
            print(f"    verify accepted: {line}")

    report = []
    for n in [int(x) for x in args.distractors.split(",")]:
        start = time.perf_counter()
        extra = synthetic_fingers(n, embedder, args.cache) if n else []
        gallery = build(prints, extra, comparator, args.target_fmr, embedder.meta, args.min_minutiae)
        print(f"+{n} distractors: gallery {len(gallery.index)}, threshold {gallery.threshold} from "
              f"{len(gallery.sample.scores)} impostor scores ({gallery.source})", flush=True)
        result = measure(prints, gallery, show, not args.identify_only, args.fast_accept, args.fast_reject)
        result.update(distractors=n, seconds=round(time.perf_counter() - start, 1), model=embedder.meta.version)
        report.append(result)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
