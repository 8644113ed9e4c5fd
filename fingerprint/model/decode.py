"""Bytes to an 8-bit grayscale array at 500 dpi, refusing what is not a usable fingerprint image.

Every refusal is an `ImageRejected` with a stable code, so the API can answer 4xx instead of 500.
The pixel cap is checked from the header before any pixel is decoded, which is what stops
decompression bombs (a tiny PNG that inflates to gigapixels, a TIFF with absurd dimensions).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "TIFF", "BMP", "PPM"})  # PIL reads PGM as "PPM"
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
    """Decode PNG/JPEG/TIFF/BMP/PGM bytes to a (H, W) uint8 array, ridges dark as captured."""
    if not data:
        raise ImageRejected("empty_image", "the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise ImageRejected(
                    "unsupported_image_format",
                    f"image format {img.format} is not accepted; send PNG, JPEG, TIFF, BMP or PGM",
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
    return _to_uint8(img)


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
