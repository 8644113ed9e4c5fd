"""A template's minutiae as a finger minutiae record another AFIS reads: ISO/IEC 19794-2:2005 or
ANSI INCITS 378-2004 (one finger view, no extended data), or plain JSON.

Positions are pixels of the window the service extracted from, resampled to 500 dpi (197 px/cm), so
another system reads them at the record's resolution. Angles: the record's convention, counter-clockwise
from the x axis with y pointing down, as SourceAFIS writes them (our angles turn the other way). The set
written is LEADER's (model/leader.py) when the template has one, else the hand-made extraction's.
Minutia types are not kept with templates: they are written as "other" (00), minutia quality as 0
(not reported), the finger's quality as the enrolment quality x 100.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Literal

import numpy as np

from fingerprint.model.minutiae.extract import MASK_CELL_PX
from fingerprint.model.minutiae.template import MinutiaeTemplate

RecordFormat = Literal["iso19794-2", "ansi378", "json"]
FINGER_CODES = ("unknown", "right_thumb", "right_index", "right_middle", "right_ring", "right_little",
                "left_thumb", "left_index", "left_middle", "left_ring", "left_little")  # ISO/IEC 19794-2 codes 0-10
PX_PER_CM = round(500 / 2.54)
_MAX_MINUTIAE = 255  # one byte counts them
_VIEW = struct.Struct(">BBBB")  # finger position, view number and impression type, quality, minutiae count
_MINUTIA = struct.Struct(">HHBB")  # type and x, y, angle, quality


def record_minutiae(template: MinutiaeTemplate) -> tuple[np.ndarray, str]:
    """The points a record carries ((n, 3): x, y, our angle) and where they come from."""
    if template.leader is not None:
        return template.leader, "leader"
    return template.points, "extractor"


def _ccw(angle: float) -> float:
    """Our angle (clockwise on screen) as the standards' counter-clockwise one, in [0, 2pi)."""
    return (-angle) % (2 * math.pi)


def _body(points: np.ndarray, finger: str | None, quality: float, ansi: bool) -> bytes:
    view = _VIEW.pack(FINGER_CODES.index(finger or "unknown"), 0, round(100 * min(max(quality, 0.0), 1.0)), len(points))
    out = bytearray(view)
    for x, y, angle in points.tolist():
        turn = _ccw(angle) / (2 * math.pi)
        code = round(turn * 180) % 180 if ansi else round(turn * 256) % 256  # 2 degree or 360/256 degree units
        out += _MINUTIA.pack(min(round(x), 0x3FFF), min(round(y), 0x3FFF), code, 0)
    return bytes(out) + b"\x00\x00"  # no extended data


def encode_record(template: MinutiaeTemplate, fmt: RecordFormat, finger: str | None, quality: float) -> bytes:
    """The record in `fmt`; JSON as UTF-8 bytes."""
    points, source = record_minutiae(template)
    points = points[:_MAX_MINUTIAE]
    h, w = (n * MASK_CELL_PX for n in template.foreground.shape)
    if fmt == "json":
        import json

        doc: dict[str, Any] = {
            "width": w, "height": h, "resolution_dpi": 500, "finger": finger or "unknown",
            "quality": round(100 * quality), "source": source,
            "minutiae": [{"x": round(x), "y": round(y), "angle_degrees": round(math.degrees(_ccw(a)), 2),
                          "type": "other"} for x, y, a in points.tolist()],
        }
        return json.dumps(doc).encode()
    ansi = fmt == "ansi378"
    body = _body(points, finger, quality, ansi)
    if ansi:
        # length (2 bytes), CBEFF product id (owner, type: 0 = unregistered), equipment (0), then as ISO
        head_len = 8 + 2 + 4 + 2 + 8 + 2
        tail = struct.pack(">HHHHHHHBB", 0, 0, 0, w, h, PX_PER_CM, PX_PER_CM, 1, 0)
        return b"FMR\x00 20\x00" + struct.pack(">H", head_len + len(body)) + tail + body
    head_len = 8 + 4 + 2 + 8 + 2
    tail = struct.pack(">HHHHHBB", 0, w, h, PX_PER_CM, PX_PER_CM, 1, 0)
    return b"FMR\x00 20\x00" + struct.pack(">I", head_len + len(body)) + tail + body
