"""The open NBIS matcher (mindtct + bozorth3, PyPI nbis-py) scoring the same pairs, for comparison."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class NbisScores:
    scores: dict[tuple[int, int], float]
    extract_seconds_per_image: float
    compare_seconds_per_pair: float


def nbis_available() -> bool:
    try:
        import nbis  # noqa: F401
    except ImportError:
        return False
    return True


def _as_gray_png(data: bytes) -> bytes:
    """NBIS reads 8-bit grayscale only; every image is re-encoded losslessly through the project's
    decoder (pixels unchanged), so palette or LZW TIFFs (the Neurotech sets) are read too."""
    from PIL import Image

    from fingerprint.model.decode import decode_grayscale

    out = io.BytesIO()
    Image.fromarray(decode_grayscale(data, 16_000_000)).save(out, format="PNG")
    return out.getvalue()


def _extract(extractor: Any, data: bytes) -> Any:
    try:
        return extractor.extract_minutiae(data)
    except Exception:  # NBIS failing to extract is a failure to enroll: score 0
        return None


def score_pairs(paths: list[Path], dpi: float, pairs: np.ndarray) -> NbisScores:
    import nbis

    settings = nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=dpi)
    extractor = nbis.new_nbis_extractor(settings)
    needed = sorted({int(i) for i in pairs.flatten()})
    # converted before the clock starts: the timing is NBIS extraction alone
    images = {i: _as_gray_png(paths[i].read_bytes()) for i in needed}
    templates: dict[int, Any] = {}
    t0 = time.perf_counter()
    for i in needed:
        templates[i] = _extract(extractor, images[i])
    extract = (time.perf_counter() - t0) / max(1, len(needed))
    scores: dict[tuple[int, int], float] = {}
    t0 = time.perf_counter()
    for a, b in pairs.tolist():
        ta, tb = templates[a], templates[b]
        scores[(a, b)] = float(ta.compare(tb)) if ta is not None and tb is not None else 0.0
    compare = (time.perf_counter() - t0) / max(1, len(pairs))
    return NbisScores(scores, extract, compare)


def nfiq2_scores(paths: list[Path], dpi: float) -> np.ndarray:
    """NFIQ 2 (0-100, ISO/IEC 29794-4) of each image, NaN where NBIS cannot process it: the standard
    quality score, the reference for the project's own. Computed apart from the timed extraction."""
    import nbis

    settings = nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=True, ppi=dpi)
    extractor = nbis.new_nbis_extractor(settings)
    out = np.full(len(paths), np.nan)
    for i, path in enumerate(paths):
        minutiae = _extract(extractor, _as_gray_png(path.read_bytes()))
        quality = minutiae.quality() if minutiae is not None else None
        if quality is not None:
            out[i] = float(quality.score)
    return out
