"""NFIQ 2 (ISO/IEC 29794-4), the standard fingerprint quality score (0-100), of an image at 500 dpi.

Computed by NIST's NFIQ 2 as bundled in `nbis-py` (NBIS and NFIQ 2 compiled, no system libraries):
the score integrators compare sensors and enrolment policies with, beside the service's own quality.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from PIL import Image

from fingerprint.model.decode import TARGET_DPI, decode, resolve_dpi, to_target_dpi

_local = threading.local()  # one extractor per thread: the bindings do not say they may be shared


def _extractor() -> Any:
    if not hasattr(_local, "extractor"):
        import nbis

        _local.extractor = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=True, ppi=TARGET_DPI))
    return _local.extractor


def nfiq2_score(data: bytes, dpi: float | None, max_pixels: int) -> int | None:
    """The image's NFIQ 2 score, or None when NFIQ 2 cannot assess it (too little print). Raises
    ImageRejected for what the pipeline itself would refuse."""
    gray, header_dpi = decode(data, max_pixels)
    gray = to_target_dpi(gray, resolve_dpi(dpi, header_dpi))
    png = io.BytesIO()
    Image.fromarray(gray).save(png, format="PNG", compress_level=0)
    try:
        quality = _extractor().extract_minutiae(png.getvalue()).quality()
    except Exception:  # the bindings raise a bare error when NBIS finds no print to assess
        return None
    return None if quality is None else int(quality.score)
