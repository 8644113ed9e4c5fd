"""Enrolment reports NFIQ 2 and refuses, without storing anything, a print below MIN_ENROLL_NFIQ2 or with fewer
minutiae than MIN_ENROLL_MINUTIAE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.test_endpoints import _multipart


async def test_enroll_returns_and_keeps_nfiq2(app_client: Callable[..., Any], png_prints: list[list[bytes]]) -> None:
    async with app_client() as c:
        r = await c.post("/api/v1/fingerprint/enroll", **_multipart(png_prints[0][0], subject_id="nia"))
        nfiq2 = r.json()["nfiq2"]
        assert r.status_code == 201 and isinstance(nfiq2, int) and 0 < nfiq2 <= 100
        (kept,) = (await c.get("/api/v1/subjects/nia")).json()["templates"]
        assert kept["nfiq2"] == nfiq2


async def test_a_minimum_nfiq2_refuses_with_low_quality(app_client: Callable[..., Any],
                                                        png_prints: list[list[bytes]]) -> None:
    async with app_client(min_enroll_nfiq2=100) as c:
        r = await c.post("/api/v1/fingerprint/enroll", **_multipart(png_prints[0][0], subject_id="ned"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "low_quality"
        assert "NFIQ 2" in r.json()["error"]["message"]
        assert (await c.get("/api/v1/subjects/ned")).status_code == 404


async def test_too_few_minutiae_refuse_with_low_quality(app_client: Callable[..., Any],
                                                         png_prints: list[list[bytes]]) -> None:
    async with app_client(min_enroll_minutiae=1000) as c:
        r = await c.post("/api/v1/fingerprint/enroll", **_multipart(png_prints[0][0], subject_id="mia"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "low_quality"
        assert "minutiae count" in r.json()["error"]["message"] and "minimum 1000" in r.json()["error"]["message"]
        assert (await c.get("/api/v1/subjects/mia")).status_code == 404
