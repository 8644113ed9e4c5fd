"""Decoding accepts the formats sensors produce and refuses everything else with a stable code."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fingerprint.model.decode import ImageRejected, decode_grayscale, to_target_dpi
from tests.conftest import image_bytes

LIMIT = 16_000_000


def _gray(h: int = 300, w: int = 280) -> np.ndarray:
    return (np.random.default_rng(0).random((h, w)) * 255).astype(np.uint8)


@pytest.mark.parametrize("fmt,kwargs", [
    ("PNG", {}), ("JPEG", {"quality": 95}), ("BMP", {}), ("PPM", {}),
    ("TIFF", {"compression": "tiff_lzw"}), ("TIFF", {}),
])
def test_accepts_sensor_formats(fmt: str, kwargs: dict[str, object]) -> None:
    arr = _gray()
    out = decode_grayscale(image_bytes(arr, fmt, **kwargs), LIMIT)
    assert out.shape == arr.shape and out.dtype == np.uint8
    if fmt != "JPEG":
        assert np.array_equal(out, arr)


def test_pgm_is_accepted() -> None:
    arr = _gray(100, 120)
    pgm = b"P5\n120 100\n255\n" + arr.tobytes()
    assert np.array_equal(decode_grayscale(pgm, LIMIT), arr)


def test_palette_lzw_tiff_like_the_neurotech_samples() -> None:
    arr = _gray()
    img = Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    buf = io.BytesIO()
    img.save(buf, format="TIFF", compression="tiff_lzw")
    out = decode_grayscale(buf.getvalue(), LIMIT)
    assert out.shape == arr.shape
    assert np.abs(out.astype(int) - arr.astype(int)).mean() < 8


def test_sixteen_bit_and_rgba_become_8_bit_gray() -> None:
    arr16 = (np.arange(300 * 300, dtype=np.uint32).reshape(300, 300) % 65536).astype(np.uint16)
    assert decode_grayscale(image_bytes(arr16, "PNG"), LIMIT).dtype == np.uint8
    rgba = np.zeros((200, 200, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent reads as white paper, not black
    assert decode_grayscale(image_bytes(rgba, "PNG"), LIMIT).min() == 255


@pytest.mark.parametrize("data,code", [
    (b"", "empty_image"),
    (b"this is not an image at all", "invalid_image"),
    (b"GIF89a" + b"\x00" * 100, "invalid_image"),
])
def test_refuses_non_images(data: bytes, code: str) -> None:
    with pytest.raises(ImageRejected) as err:
        decode_grayscale(data, LIMIT)
    assert err.value.code == code


def test_refuses_unsupported_format() -> None:
    buf = io.BytesIO()
    Image.fromarray(_gray()).save(buf, format="GIF")
    with pytest.raises(ImageRejected) as err:
        decode_grayscale(buf.getvalue(), LIMIT)
    assert err.value.code == "unsupported_image_format"


def test_refuses_truncated_file() -> None:
    data = image_bytes(_gray(), "PNG")
    with pytest.raises(ImageRejected) as err:
        decode_grayscale(data[: len(data) // 2], LIMIT)
    assert err.value.code == "corrupt_image"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with a tiny compressed body (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


def test_refuses_decompression_bomb_before_decoding() -> None:
    with pytest.raises(ImageRejected) as err:
        decode_grayscale(_png_header_only(30000, 30000), LIMIT)
    assert err.value.code == "image_too_large"


def test_resamples_to_500_dpi_and_refuses_tiny_prints() -> None:
    assert to_target_dpi(_gray(512, 512), 1000).shape == (256, 256)
    assert to_target_dpi(_gray(300, 300), 500).shape == (300, 300)
    with pytest.raises(ImageRejected) as err:
        to_target_dpi(_gray(40, 40), 500)
    assert err.value.code == "image_too_small"
    with pytest.raises(ImageRejected) as err:
        to_target_dpi(_gray(300, 300), 50)
    assert err.value.code == "invalid_dpi"


def _wsq(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="WSQ")  # NBIS's encoder, through the same plugin
    return buf.getvalue()


def _ridges(h: int = 300, w: int = 280) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (127 + 100 * np.sin(x / 2.0 + y / 5.0)).astype(np.uint8)  # wavelet-friendly, like a print


def test_wsq_and_jpeg2000_decode_and_wsq_states_its_resolution() -> None:
    from fingerprint.model.decode import decode, resolve_dpi

    arr = _ridges()
    data = _wsq(arr)
    assert data[:2] == b"\xff\xa0"  # WSQ's start-of-image marker: real WSQ bytes
    out, ppi = decode(data, LIMIT)
    assert out.shape == arr.shape and np.abs(out.astype(int) - arr.astype(int)).mean() < 6  # lossy, close
    assert ppi == 500.0
    at_250 = data.replace(b"PPI 500", b"PPI 250", 1)  # a 250 ppi capture says so in its NISTCOM comment
    assert decode(at_250, LIMIT)[1] == 250.0
    assert resolve_dpi(None, 250.0) == 250.0 and resolve_dpi(400.0, 250.0) == 400.0 and resolve_dpi(None, None) == 500
    assert decode(data.replace(b"PPI 500", b"PPI -1 ", 1), LIMIT)[1] is None  # NIST's "unknown"
    j2k = io.BytesIO()
    Image.fromarray(arr).save(j2k, format="JPEG2000")
    out, ppi = decode(j2k.getvalue(), LIMIT)
    assert out.shape == arr.shape and ppi is None


@pytest.mark.parametrize("cut", [6, 40, 200, -50])
def test_truncated_wsq_is_refused_with_a_code(cut: int) -> None:
    data = _wsq(_ridges())
    with pytest.raises(ImageRejected) as err:
        decode_grayscale(data[:cut], LIMIT)
    assert err.value.code in ("corrupt_image", "invalid_image")


def test_scrambled_wsq_is_refused_or_decoded_never_a_crash() -> None:
    data = _wsq(_ridges())
    rng = np.random.default_rng(1)
    for _ in range(30):
        sample = bytearray(data)
        for at in rng.integers(2, len(data), size=8):
            sample[at] ^= int(rng.integers(1, 256))
        try:
            decode_grayscale(bytes(sample), LIMIT)
        except ImageRejected as err:
            assert err.code in ("corrupt_image", "invalid_image", "image_too_large")
