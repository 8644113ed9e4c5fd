"""NFIQ 2 of an image as the service computes it at enrolment."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from fingerprint.model.nfiq2 import nfiq2_score


def _png(gray: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG")
    return buf.getvalue()


def test_a_print_scores_higher_than_its_noisy_copy_and_a_blank_scores_nothing(png_prints: list[list[bytes]]) -> None:
    clean = nfiq2_score(png_prints[0][0], None, 16_000_000)
    assert clean is not None and 0 < clean <= 100
    gray = np.asarray(Image.open(io.BytesIO(png_prints[0][0])).convert("L"), dtype=np.float64)
    noisy = np.clip(gray + np.random.default_rng(0).normal(0, 90, gray.shape), 0, 255).astype(np.uint8)
    assert (nfiq2_score(_png(noisy), None, 16_000_000) or 0) < clean
    assert (nfiq2_score(_png(np.full((400, 400), 200, np.uint8)), None, 16_000_000) or 0) <= 5
    # a 1000 dpi capture is resampled to 500 dpi first, as NFIQ 2 requires
    big = Image.open(io.BytesIO(png_prints[0][0])).convert("L")
    twice = _png(np.asarray(big.resize((big.width * 2, big.height * 2), Image.Resampling.BICUBIC)))
    assert abs((nfiq2_score(twice, 1000, 16_000_000) or 0) - clean) <= 10
