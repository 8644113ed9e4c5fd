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
    nfiq2: np.ndarray | None = None  # per image (0-100), NaN where NBIS cannot process it


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


def _settings(dpi: float, nfiq2: bool) -> Any:
    import nbis

    return nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=nfiq2, ppi=dpi)


def score_pairs(paths: list[Path], dpi: float, pairs: np.ndarray, with_nfiq2: bool = False) -> NbisScores:
    """bozorth3 scores of `pairs` with timed mindtct extraction; `with_nfiq2` also gives every image's
    NFIQ 2 (ISO/IEC 29794-4), the standard quality score and the reference for the project's own,
    from a second, untimed extraction of the same converted images."""
    import nbis

    extractor = nbis.new_nbis_extractor(_settings(dpi, nfiq2=False))
    needed = sorted({int(i) for i in pairs.flatten()})
    # converted before the clock starts: the timing is NBIS extraction alone
    images = {i: _as_gray_png(paths[i].read_bytes()) for i in (range(len(paths)) if with_nfiq2 else needed)}
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
    return NbisScores(scores, extract, compare, _nfiq2(images, dpi) if with_nfiq2 else None)


def _nfiq2(images: dict[int, bytes], dpi: float) -> np.ndarray:
    import nbis

    extractor = nbis.new_nbis_extractor(_settings(dpi, nfiq2=True))
    out = np.full(len(images), np.nan)
    for i, image in images.items():
        minutiae = _extract(extractor, image)
        quality = minutiae.quality() if minutiae is not None else None
        if quality is not None:
            out[i] = float(quality.score)
    return out
