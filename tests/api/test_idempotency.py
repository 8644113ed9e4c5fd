"""Idempotency-Key on enroll: a retry answers the first response and stores nothing more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.api.test_endpoints import _json, _multipart


async def _templates(c: Any, subject: str) -> list[str]:
    r = await c.get(f"/api/v1/subjects/{subject}")
    return [] if r.status_code == 404 else [t["template_id"] for t in r.json()["templates"]]


async def test_a_retry_with_the_same_key_answers_the_first_response(app_client: Callable[..., Any],
                                                                    png_prints: list[list[bytes]]) -> None:
    async with app_client() as c:
        key = {"Idempotency-Key": "3f0a-retry-1"}
        first = await c.post("/api/v1/fingerprint/enroll", headers=key, **_multipart(png_prints[0][0], subject_id="ann"))
        assert first.status_code == 201 and "idempotent-replayed" not in first.headers
        # the same request in another encoding (JSON instead of multipart) is the same request
        again = await c.post("/api/v1/fingerprint/enroll", headers=key, **_json(png_prints[0][0], subject_id="ann"))
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert await _templates(c, "ann") == [first.json()["template_id"]]

        for other in (_multipart(png_prints[0][1], subject_id="ann"), _multipart(png_prints[0][0], subject_id="bea"),
                      _multipart(png_prints[0][0], subject_id="ann", finger="left_thumb")):
            r = await c.post("/api/v1/fingerprint/enroll", headers=key, **other)
            assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
        assert await _templates(c, "ann") == [first.json()["template_id"]] and await _templates(c, "bea") == []

        r = await c.post("/api/v1/fingerprint/enroll", headers={"Idempotency-Key": "another"},
                         **_multipart(png_prints[0][0], subject_id="ann"))
        assert r.status_code == 201 and len(await _templates(c, "ann")) == 2  # a new key is a new enrolment

        for bad in ("has space", "x" * 256, ""):
            r = await c.post("/api/v1/fingerprint/enroll", headers={"Idempotency-Key": bad},
                             **_multipart(png_prints[0][0], subject_id="ann"))
            assert r.status_code == 400, bad


async def test_a_retry_racing_its_original_stores_one_template(app_client: Callable[..., Any],
                                                               png_prints: list[list[bytes]]) -> None:
    async with app_client() as c:
        key = {"Idempotency-Key": "race"}
        answers = await asyncio.gather(*(c.post("/api/v1/fingerprint/enroll", headers=key,
                                                **_multipart(png_prints[1][0], subject_id="cat")) for _ in range(3)))
        assert [r.status_code for r in answers] == [201, 201, 201]
        assert len({r.json()["template_id"] for r in answers}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 2
        assert await _templates(c, "cat") == [answers[0].json()["template_id"]]


async def test_erasure_forgets_the_key(app_client: Callable[..., Any], png_prints: list[list[bytes]]) -> None:
    async with app_client() as c:
        key = {"Idempotency-Key": "k"}
        first = await c.post("/api/v1/fingerprint/enroll", headers=key, **_multipart(png_prints[2][0], subject_id="dan"))
        assert (await c.delete("/api/v1/subjects/dan")).status_code == 200
        # nothing of an erased subject is kept, the key included: the same request enrols anew
        r = await c.post("/api/v1/fingerprint/enroll", headers=key, **_multipart(png_prints[2][0], subject_id="dan"))
        assert r.status_code == 201 and r.json()["template_id"] != first.json()["template_id"]
