"""Bytes to an 8-bit grayscale array at 500 dpi, refusing what is not a usable fingerprint image.

Every refusal is an `ImageRejected` with a stable code, so the API can answer 4xx instead of 500.
The pixel cap is checked from the header before any pixel is decoded, which is what stops
decompression bombs (a tiny PNG that inflates to gigapixels, a TIFF with absurd dimensions).
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import wsq  # noqa: F401  (registers Pillow's WSQ reader: NBIS's decoder, which the FBI's format defines)
from PIL import Image, UnidentifiedImageError

# PIL reads PGM as "PPM"; WSQ is what fingerprint capture stacks and agencies exchange
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "TIFF", "BMP", "PPM", "WSQ", "JPEG2000"})
FORMAT_NAMES = "PNG, JPEG, JPEG 2000, TIFF, BMP, PGM or WSQ"
TARGET_DPI = 500.0
MIN_SIDE_PX = 96  # after resampling to 500 dpi: under ~5 mm there is no fingerprint to match
MIN_DPI = 200.0
MAX_DPI = 2000.0


class ImageRejected(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decode_grayscale(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode image bytes (ALLOWED_FORMATS) to a (H, W) uint8 array, ridges dark as captured."""
    return decode(data, max_pixels)[0]


def decode(data: bytes, max_pixels: int) -> tuple[np.ndarray, float | None]:
    """The grayscale array and the resolution the image's header states, where the format defines one
    for fingerprints (WSQ's NISTCOM `PPI`); None otherwise: other formats' dpi fields are routinely 72."""
    if not data:
        raise ImageRejected("empty_image", "the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise ImageRejected(
                    "unsupported_image_format",
                    f"image format {img.format} is not accepted; send {FORMAT_NAMES}",
                )
            width, height = img.size
            if width * height > max_pixels:
                raise ImageRejected(
                    "image_too_large", f"image has {width}x{height} pixels; the limit is {max_pixels} pixels"
                )
            img.load()
    except ImageRejected:
        raise
    except UnidentifiedImageError as exc:
        raise ImageRejected("invalid_image", "the data is not a recognised image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("image_too_large", "the image exceeds the pixel limit") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
        raise ImageRejected("corrupt_image", "the image data is truncated or corrupt") from exc
    except Exception as exc:  # WSQ's plugin raises a bare Exception for what its C decoder refuses
        raise ImageRejected("corrupt_image", "the image data is truncated or corrupt") from exc
    return _to_uint8(img), wsq_ppi(data) if img.format == "WSQ" else None


_PPI = re.compile(rb"^PPI[ \t]+(\d+)", re.MULTILINE)


def wsq_ppi(data: bytes) -> float | None:
    """The PPI of a WSQ file's NISTCOM comment (segment FFA8 before the frame), if it states one."""
    pos = 2  # after SOI (FFA0)
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xA2:  # start of frame: no comment before it said
            return None
        if marker == 0xA8:
            found = _PPI.search(data[pos + 4:pos + 2 + length])
            if found and MIN_DPI <= int(found.group(1)) <= MAX_DPI:
                return float(found.group(1))
        pos += 2 + length
    return None


def resolve_dpi(requested: float | None, header: float | None) -> float:
    """The caller's dpi when given, else the header's, else 500."""
    return requested if requested is not None else header if header is not None else TARGET_DPI


def _to_uint8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return scaled.astype(np.uint8)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def to_target_dpi(gray: np.ndarray, dpi: float) -> np.ndarray:
    """Resample to 500 dpi; reject resolutions no fingerprint sensor produces."""
    if not (MIN_DPI <= dpi <= MAX_DPI):
        raise ImageRejected("invalid_dpi", f"dpi must be between {MIN_DPI:g} and {MAX_DPI:g}")
    if abs(dpi - TARGET_DPI) > 1.0:
        scale = TARGET_DPI / dpi
        h, w = gray.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BILINEAR))
    if min(gray.shape) < MIN_SIDE_PX:
        raise ImageRejected(
            "image_too_small",
            f"image is {gray.shape[1]}x{gray.shape[0]} px at 500 dpi; at least {MIN_SIDE_PX} px per side is needed",
        )
    return gray
