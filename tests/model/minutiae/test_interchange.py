"""Minutiae records as another AFIS reads them: ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from fingerprint.model.minutiae.interchange import encode_record
from fingerprint.model.minutiae.template import MinutiaeTemplate


def _read(record: bytes, ansi: bool) -> dict[str, object]:
    """An independent reader, field by field as the standards lay them out."""
    assert record[:8] == b"FMR\x00 20\x00"
    if ansi:
        (length,) = struct.unpack_from(">H", record, 8)
        at = 10 + 4  # CBEFF product id
    else:
        (length,) = struct.unpack_from(">I", record, 8)
        at = 12
    _equipment, width, height, xres, yres, views, _reserved = struct.unpack_from(">HHHHHBB", record, at)
    at += 12
    position, _impression, quality, count = struct.unpack_from(">BBBB", record, at)
    at += 4
    minutiae = []
    for _ in range(count):
        tx, y, angle, mq = struct.unpack_from(">HHBB", record, at)
        minutiae.append((tx >> 14, tx & 0x3FFF, y & 0x3FFF, angle, mq))
        at += 6
    (extended,) = struct.unpack_from(">H", record, at)
    assert at + 2 + extended == length == len(record)
    return {"size": (width, height), "res": (xres, yres), "views": views, "position": position, "quality": quality,
            "minutiae": minutiae}


@pytest.fixture
def template() -> MinutiaeTemplate:
    # our angles turn clockwise on screen (y down): 0 points right, pi/2 points down
    points = np.array([[10, 20, 0.0], [100, 200, math.pi / 2], [399, 5, math.pi], [50, 60, 3 * math.pi / 2]],
                      dtype=np.float32)
    return MinutiaeTemplate(points, np.ones((25, 25), dtype=bool))


def test_iso_record_fields(template: MinutiaeTemplate) -> None:
    r = _read(encode_record(template, "iso19794-2", "left_index", 0.82), ansi=False)
    assert r["size"] == (400, 400) and r["res"] == (197, 197) and r["views"] == 1
    assert r["position"] == 7 and r["quality"] == 82
    # counter-clockwise in 360/256 degree units: down on screen is 270 degrees
    assert r["minutiae"] == [(0, 10, 20, 0, 0), (0, 100, 200, 192, 0), (0, 399, 5, 128, 0), (0, 50, 60, 64, 0)]


def test_ansi_record_fields(template: MinutiaeTemplate) -> None:
    record = encode_record(template, "ansi378", None, 0.5)
    r = _read(record, ansi=True)
    assert len(record) == 26 + 4 + 6 * 4 + 2
    assert r["position"] == 0 and r["quality"] == 50
    assert [m[3] for m in r["minutiae"]] == [0, 135, 90, 45]  # 2 degree units  # type: ignore[attr-defined]


def test_leader_minutiae_are_preferred_and_json_agrees(template: MinutiaeTemplate) -> None:
    leader = np.array([[30, 40, math.pi / 4]], dtype=np.float32)
    both = MinutiaeTemplate(template.points, template.foreground, leader)
    doc = json.loads(encode_record(both, "json", "right_thumb", 0.9))
    assert doc["source"] == "leader" and doc["resolution_dpi"] == 500
    assert doc["minutiae"] == [{"x": 30, "y": 40, "angle_degrees": 315.0, "type": "other"}]
    assert _read(encode_record(both, "iso19794-2", "right_thumb", 0.9), ansi=False)["minutiae"] == [(0, 30, 40, 224, 0)]
