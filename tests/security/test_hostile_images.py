"""A corpus of hostile inputs: each gets a 4xx with a code, over real HTTP, and memory stays bounded."""

from __future__ import annotations

import io
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.model.test_decode import _png_header_only

pytestmark = pytest.mark.slow


def _tiff_with_huge_strip_count() -> bytes:
    """A little-endian TIFF claiming 100x100 pixels in 50 million strips whose offsets lie past the file."""
    n_strips = 50_000_000
    entries = [
        (256, 4, 1, 100), (257, 4, 1, 100), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, n_strips, 4096), (277, 3, 1, 1), (278, 4, 1, 1), (279, 4, n_strips, 8192),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHII", tag, typ, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _polyglot_png_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.sh", "#!/bin/sh\necho pwned\n")
    return _png(np.zeros((8, 8), np.uint8)) + buf.getvalue()


CORPUS: dict[str, tuple[bytes, str]] = {
    "zero_bytes": (b"", "image/png"),
    "truncated_png": (_png((np.random.default_rng(0).random((300, 300)) * 255).astype(np.uint8))[:900], "image/png"),
    "one_pixel": (_png(np.zeros((1, 1), np.uint8)), "image/png"),
    "png_bomb_30000x30000": (_png_header_only(30000, 30000), "image/png"),
    "tiff_huge_strip_count": (_tiff_with_huge_strip_count(), "image/tiff"),
    "polyglot_png_zip": (_polyglot_png_zip(), "image/png"),
    "gif_disguised_as_png": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/png"),
    "html_as_image": (b"<html><script>alert(1)</script></html>", "image/png"),
    "random_bytes": (np.random.default_rng(1).bytes(50_000), "application/octet-stream"),
}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def test_hostile_corpus_gets_4xx_and_bounded_memory(live_server: Callable[..., Any]) -> None:
    import os

    async with live_server() as (client, _):
        # warm up one request so the baseline includes the model's steady state
        await client.post("/api/v1/fingerprint/identify", files={"image": ("x.png", CORPUS["one_pixel"][0], "image/png")})
        before = _rss_kb(os.getpid())
        report = {}
        for name, (data, ctype) in CORPUS.items():
            for _ in range(3):
                t0 = time.perf_counter()
                r = await client.post("/api/v1/fingerprint/identify", files={"image": ("f", data, ctype)})
                elapsed = time.perf_counter() - t0
                assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
                assert r.json()["error"]["code"], name
            report[name] = (r.status_code, r.json()["error"]["code"], round(elapsed * 1000, 1))
        r = await client.post("/api/v1/fingerprint/identify", content=b"\x89PNG garbage",
                              headers={"content-type": "image/png"})
        assert r.status_code == 415
        after = _rss_kb(os.getpid())
    print({"hostile": report, "rss_growth_mb": round((after - before) / 1024, 1)})
    assert after - before < 200 * 1024  # no input may make the process hold on to hundreds of MB
