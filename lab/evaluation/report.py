"""`python -m lab eval`: per-set verification and identification figures, a JSON report and a DET plot."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fingerprint.calibration.enrollment import EnrollmentResult, by_enrolled_impressions
from fingerprint.calibration.folder import pair_scores_of, score_folder
from fingerprint.calibration.metrics import cmc, det_points, eer, fnmr_at_fmr
from fingerprint.calibration.protocol import Pairs, all_pairs, fvc_pairs, identification_split
from fingerprint.gallery.impostors import card_threshold
from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.weights import DEFAULT_WEIGHTS, ModelMeta
from lab.evaluation.confidence import EerInterval, Scored, finger_bootstrap, interval_lines, pair_fingers
from lab.evaluation.nbis_baseline import nbis_available, score_pairs
from lab.evaluation.prepared_cache import embedder_for
from lab.evaluation.quality_check import QualityResult

_MAX_PIXELS = 16_000_000
_TIMED_IMAGES = 20
_NBIS_ALL_PAIRS_LIMIT = 200  # images; beyond this bozorth3 all-pairs takes too long for an eval run


@dataclass
class ProtocolResult:
    genuine: int
    impostor: int
    eer: float
    fmr100: float | None
    fmr1000: float | None

    @classmethod
    def of(cls, gen: np.ndarray, imp: np.ndarray) -> ProtocolResult:
        return cls(len(gen), len(imp), eer(gen, imp), fnmr_at_fmr(gen, imp, 0.01), fnmr_at_fmr(gen, imp, 0.001))


@dataclass
class SetResult:
    name: str
    images: int
    fingers: int
    fte: float
    ms_per_image: float
    fvc: ProtocolResult
    all_pairs: ProtocolResult
    rank1: float
    cmc: list[float]
    quality: QualityResult | None = None
    enrollment: list[EnrollmentResult] = field(default_factory=list)
    nbis: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, EerInterval] = field(default_factory=dict)  # by protocol: "fvc", "all_pairs"


def _split(scores: dict[tuple[int, int], float], pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([scores[(a, b)] for a, b in pairs.genuine.tolist()]),
            np.array([scores[(a, b)] for a, b in pairs.impostor.tolist()]))


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one intra-op thread inside the block (the caller's count restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _time_per_image(embedder: TorchEmbedder, images: list[bytes], dpi: float, repeats: int = 3) -> float:
    """Preprocessing + embedding at batch size 1 on one thread, median over the images and repeats (ms).
    Several images, interleaved: one image's ten repeats had swung 22-29 ms between runs on this shared machine."""
    times = []
    with _one_thread():
        for _ in range(repeats):
            for data in images:
                t0 = time.perf_counter()
                # TorchEmbedder's own preprocess: a prepared cache's hit would time a file read
                embedder.embed([TorchEmbedder.preprocess(embedder, data, dpi)])
                times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def evaluate_folder(folder: Path, embedder: TorchEmbedder, baseline: str, dpi: float | None,
                    min_quality: float, log: Callable[[str], None],
                    comparator: Comparator | None = None) -> tuple[SetResult, dict[str, Any]]:
    scored = score_folder(folder, embedder, dpi, comparator, progress=log)
    imps, set_dpi, prepared, cos = scored.impressions, scored.dpi, scored.prepared, scored.cos
    fingers = [i.finger for i in imps]
    numbers = [i.impression for i in imps]
    qualities = np.array([p.quality for p in prepared], dtype=np.float64)
    failed = int((qualities < min_quality).sum())  # still compared: FVC counts a failure to enroll against the matcher
    ms = _time_per_image(embedder, [i.path.read_bytes() for i in imps[:_TIMED_IMAGES]], set_dpi)
    fvc = fvc_pairs(fingers, numbers)
    allp = all_pairs(fingers)
    fvc_gen, fvc_imp = pair_scores_of(cos, fvc.genuine), pair_scores_of(cos, fvc.impostor)
    all_gen, all_imp = pair_scores_of(cos, allp.genuine), pair_scores_of(cos, allp.impostor)
    gallery, probes = identification_split(fingers, numbers)
    labels = np.array(fingers)
    curve = cmc(cos[np.ix_(probes, gallery)], labels[probes], labels[gallery], ranks=min(10, len(gallery)))
    result = SetResult(
        name=folder.name, images=len(imps), fingers=len(set(fingers)), fte=failed / len(imps), ms_per_image=ms,
        fvc=ProtocolResult.of(fvc_gen, fvc_imp), all_pairs=ProtocolResult.of(all_gen, all_imp),
        rank1=float(curve[0]), cmc=[float(c) for c in curve],
    )
    curves: dict[str, Any] = {"ours_fvc": det_points(fvc_gen, fvc_imp), "ours_all": det_points(all_gen, all_imp)}
    threshold = card_threshold(embedder.meta, 0.001)  # as served before a gallery has its own estimate
    result.enrollment = by_enrolled_impressions(cos, fingers, numbers, threshold)
    nfiq2 = None
    nbis_scored: dict[str, Scored] = {}
    if baseline == "nbis":
        if not nbis_available():
            raise RuntimeError("--baseline nbis needs the bench extra: pip install -e '.[bench]'")
        use_all = len(imps) <= _NBIS_ALL_PAIRS_LIMIT
        pairs = np.concatenate([allp.genuine, allp.impostor] if use_all else [fvc.genuine, fvc.impostor])
        log(f"  NBIS scoring {len(pairs)} pairs of {folder.name}...")
        nb = score_pairs([i.path for i in imps], set_dpi, pairs, with_nfiq2=True)
        nfiq2 = nb.nfiq2
        ng, ni = _split(nb.scores, fvc)
        nbis_scored["fvc"] = Scored(ng, ni)
        result.nbis = {"fvc": ProtocolResult.of(ng, ni).__dict__,
                       "ms_per_image_extract": nb.extract_seconds_per_image * 1000,
                       "ms_per_comparison": nb.compare_seconds_per_pair * 1000}
        curves["nbis_fvc"] = det_points(ng, ni)
        if use_all:
            ag, ai = _split(nb.scores, allp)
            nbis_scored["all_pairs"] = Scored(ag, ai)
            result.nbis["all_pairs"] = ProtocolResult.of(ag, ai).__dict__
            curves["nbis_all"] = det_points(ag, ai)
    result.quality = QualityResult.of(allp.genuine, all_gen, qualities, threshold, nfiq2)
    for proto, protocol, ours in (("fvc", fvc, Scored(fvc_gen, fvc_imp)), ("all_pairs", allp, Scored(all_gen, all_imp))):
        result.intervals[proto] = finger_bootstrap(
            pair_fingers(fingers, protocol.genuine)[:, 0], pair_fingers(fingers, protocol.impostor), ours, nbis_scored.get(proto)
        )
    return result, curves


def _ours_compare_ms(dim: int, views: int, grid: tuple[int, ...] | None, comparator: Comparator) -> float:
    """One 1:1 comparison as the service makes it: the probe's grid against a template's (the
    shift search, 64 templates at a time as in identify's re-ranking), else the probe's views
    against a template, best view wins."""
    rng = np.random.default_rng(0)
    if grid is not None and comparator.grid is not None:
        cells = torch.from_numpy(rng.integers(-127, 128, (65, *grid), dtype=np.int8))
        view_cos = torch.from_numpy(rng.uniform(-1, 1, (1, 64)).astype(np.float32))
        t0 = time.perf_counter()
        for _ in range(20):
            comparator.grid_cosines(cells[:1], cells[1:], view_cos)
        return (time.perf_counter() - t0) / (20 * 64) * 1000
    probes = rng.standard_normal((10000, views, dim)).astype(np.float32)
    templates = rng.standard_normal((10000, dim)).astype(np.float32)
    t0 = time.perf_counter()
    comparator.view_cosines(probes[:100], templates[:100])
    return (time.perf_counter() - t0) / (100 * 100) * 1000


def _minutiae_compare_ms(comparator: Comparator) -> float:
    """One template's minutiae against a probe's, as identify's re-scoring pays it: the template's
    cylinders built from its stored minutiae, then compared (the probe's are built once per request)."""
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(40, 280, (60, 2)), rng.uniform(0, 2 * np.pi, 60)].astype(np.float32)
    template = MinutiaeTemplate(points, np.ones((20, 20), bool))
    t0 = time.perf_counter()
    comparator.fused([0.0] * 20, template, [template] * 20)
    return (time.perf_counter() - t0) / 20 * 1000


def _pct(x: float | None) -> str:
    return "   n/a" if x is None else f"{x * 100:6.2f}"


def format_table(results: list[SetResult], compare_ms: float) -> str:
    lines = [
        "| set | protocol | EER % | FMR100 % | FMR1000 % | rank-1 % | FTE % | ms/image | NBIS EER % | EER ratio (ours/NBIS) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for proto, res in (("FVC", r.fvc), ("all-pairs", r.all_pairs)):
            nb = r.nbis.get("fvc" if proto == "FVC" else "all_pairs")
            nb_eer = f"{nb['eer'] * 100:.2f}" if nb else "-"
            ratio = f"{res.eer / nb['eer']:.2f}" if nb and nb["eer"] > 0 else "-"
            lines.append(
                f"| {r.name} | {proto} ({res.genuine}g/{res.impostor}i) | {_pct(res.eer)} | {_pct(res.fmr100)} | "
                f"{_pct(res.fmr1000)} | {r.rank1 * 100:.1f} | {r.fte * 100:.1f} | {r.ms_per_image:.1f} | {nb_eer} | {ratio} |"
            )
    lines += ["", "Quality: all-pairs FNMR % at the served threshold (FMR 0.1 %) after discarding the 0 / 5 / 10 / 20 % "
              "of genuine comparisons whose worse image scores lowest",
              "| set | ours: mean | FNMR by ours | NFIQ 2: mean | FNMR by NFIQ 2 | Spearman ours vs NFIQ 2 |",
              "|---|---|---|---|---|---|"]
    for r in results:
        if r.quality is None:
            continue
        q = r.quality
        by_nfiq = " / ".join(f"{x * 100:.1f}" for x in q.fnmr_discard_nfiq2) or "-"
        nfiq_mean = "-" if q.nfiq2_mean is None else f"{q.nfiq2_mean:.0f}"
        rho = "-" if q.spearman_vs_nfiq2 is None else f"{q.spearman_vs_nfiq2:.2f}"
        lines.append(f"| {r.name} | {q.ours_mean:.2f} | {' / '.join(f'{x * 100:.1f}' for x in q.fnmr_discard_ours)} | "
                     f"{nfiq_mean} | {by_nfiq} | {rho} |")
    lines += ["", "Enrolling k impressions per finger (best template wins), probes = impressions after the 3rd, "
              "at the served threshold", "| set | k | probes | FNMR % | FMR % | rank-1 % |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.name} | {e.enrolled} | {e.probes} | {e.fnmr * 100:.1f} | {e.fmr * 100:.2f} | {e.rank1 * 100:.1f} |"
              for r in results for e in r.enrollment]
    lines += ["", *interval_lines([(r.name, r.intervals) for r in results])]
    timing = [f"ours: {compare_ms * 1000:.2f} us per comparison"]
    for r in results:
        if r.nbis:
            timing.append(f"NBIS on {r.name}: {r.nbis['ms_per_image_extract']:.1f} ms/extraction, "
                          f"{r.nbis['ms_per_comparison']:.2f} ms/comparison "
                          f"(ratio NBIS/ours {r.nbis['ms_per_comparison'] / compare_ms:.2g}x)")
    return "\n".join(lines) + "\n\n" + "\n".join(timing)


def _plot(curves: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for set_name, cs in curves.items():
        for key, (fmr, fnmr) in cs.items():
            style = "--" if key.startswith("nbis") else "-"
            ax.plot(np.clip(fmr, 1e-4, 1), np.clip(fnmr, 1e-4, 1), style, label=f"{set_name} {key}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FMR")
    ax.set_ylabel("FNMR")
    ax.set_title("DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fold_comparators(meta: ModelMeta, folds: Path) -> dict[str, Comparator]:
    """Per set, the card's comparator with the fusion weights chosen without that set (the JSON that
    `python -m lab.evaluation.minutiae_folds choose` prints): its figures are then out of sample."""
    chosen = json.loads(folds.read_text())
    return {name: Comparator.from_card(replace(meta, minutiae_weight=float(v["chosen_on_others"][0]),
                                               leader_weight=float(v["chosen_on_others"][1])))
            for name, v in chosen.items() if isinstance(v, dict)}


def run_eval(dirs: list[Path], baseline: str, weights: Path | None, out: Path, dpi: float | None,
             log: Callable[[str], None], min_quality: float = 0.3, precision: str = "auto",
             folds: Path | None = None, fast_probes: bool = False, prepared_cache: Path | None = None) -> list[SetResult]:
    embedder = embedder_for(weights or DEFAULT_WEIGHTS, _MAX_PIXELS, prepared_cache, precision=precision,
                            fast_probes=fast_probes)
    one_blas_thread()  # as the service compares
    out.mkdir(parents=True, exist_ok=True)
    per_set = fold_comparators(embedder.meta, folds) if folds else {}
    results, curves = [], {}
    for folder in dirs:
        chosen = per_set.get(folder.name)
        weights_note = "" if chosen is None else \
            f" (fusion weights {chosen.minutiae_weight:g} / {chosen.leader_weight:g}, chosen without it)"
        log(f"evaluating {folder}{weights_note} ...")
        if folds and chosen is None:
            raise ValueError(f"{folds} has no weights chosen without {folder.name}")
        res, cs = evaluate_folder(folder, embedder, baseline, dpi, min_quality, log, chosen)
        results.append(res)
        curves[folder.name] = cs
    grid = embedder.meta.grid_shape()
    # on one intra-op thread, as the service's search thread compares (batching/pipeline.py): with two,
    # the small tensors of a comparison spend more time in OpenMP barriers than in arithmetic
    # (minutiae 13-17 vs 2.2-2.4 ms per comparison on this 2-core machine with another job running)
    comparator = Comparator.from_card(embedder.meta)
    with _one_thread():
        compare_ms = _ours_compare_ms(embedder.meta.embedding_dim, (2 * embedder.meta.probe_shift_radius + 1) ** 2,
                                      grid, comparator)
        if comparator.fuses_minutiae:
            compare_ms += _minutiae_compare_ms(comparator)
    table = format_table(results, compare_ms)
    report = {"model": embedder.meta.__dict__, "precision": embedder.precision, "sets": [_as_dict(r) for r in results],
              "ours_ms_per_comparison": compare_ms}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(curves, out / "det.png")
    log(f"model {embedder.meta.version} ({embedder.precision})\n{table}\nreport: {out / 'report.json'}, DET: {out / 'det.png'}")
    return results


def _as_dict(r: SetResult) -> dict[str, Any]:
    d = dict(r.__dict__)
    d["fvc"] = r.fvc.__dict__
    d["all_pairs"] = r.all_pairs.__dict__
    d["quality"] = None if r.quality is None else r.quality.__dict__
    d["enrollment"] = [e.__dict__ for e in r.enrollment]
    d["intervals"] = {k: v.__dict__ for k, v in r.intervals.items()}
    return d
