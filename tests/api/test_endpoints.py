"""Each endpoint over the real app and the shipped model, in both body encodings."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta
from tests.conftest import card_variant, image_bytes

DEFAULT_META = read_meta(DEFAULT_WEIGHTS)


def _multipart(image: bytes, **fields: Any) -> dict[str, Any]:
    return {"files": {"image": ("print.png", image, "image/png")}, "data": {k: str(v) for k, v in fields.items()}}


def _json(image: bytes, **fields: Any) -> dict[str, Any]:
    return {"json": {"image": base64.b64encode(image).decode(), **fields}}


async def test_health_and_readiness(app_client: Callable[..., Any]) -> None:
    async with app_client() as c:
        assert (await c.get("/health")).json() == {"status": "ok"}
        ready = (await c.get("/api/v1/models/status")).json()
        assert ready["status"] == "ready" and ready["store"] == "ok"
        # an empty gallery has no impostor scores: the card's synthetic floor (above its prior) decides, and
        # readiness says so
        assert ready["threshold"]["source"] == "synthetic_floor" and ready["threshold"]["impostor_scores"] == 0
        assert ready["threshold"]["value"] == ready["threshold"]["floor"] > DEFAULT_META.threshold_fmr_1e3
        # the card's impostor tail factor: the gallery decides at a deeper share of its sample, so needs more
        share = 0.001 / DEFAULT_META.impostor_tail_factor
        assert ready["threshold"]["target_fmr"] == 0.001 and ready["threshold"]["sample_share"] == pytest.approx(share)
        assert ready["threshold"]["needed"] == math.ceil(3 / share)
        status = (await c.get("/api/v1/status")).json()
        assert status["status"] == "ready" and status["store"] == "ok"
        assert len(status["model"]["sha256"]) == 64 and status["model"]["embedding_dim"] <= 512
        assert status["queue"]["depth"] == 0 and status["queue"]["max_capacity"] == 16
        assert 2 <= status["queue"]["capacity"] <= 16  # what measured extraction can finish in time
        assert status["gallery"]["size"] == 0
        assert status["model"]["threshold"]["value"] == ready["threshold"]["value"]
        assert status["model"]["threshold"]["source"] == "synthetic_floor"
        assert status["model"]["precision"] in ("float32", "bfloat16")
        assert status["model"]["probe_minutiae"] == "distilled_then_leader"  # FAST_PROBES and FAST_ACCEPT by default


async def test_identify_re_scores_as_many_candidates_on_the_minutiae_as_set(app_client: Callable[..., Any]) -> None:
    async with app_client(identify_minutiae_shortlist=4) as c:
        assert (await c.get("/api/v1/models/status")).json()["status"] == "ready"
        index = c.app.state.service.index
        assert index is not None and index.comparator.minutiae_shortlist == 4


async def test_a_threshold_measured_on_the_operators_sensor_decides_verify_and_identify(
        app_client: Callable[..., Any], png_prints: list[list[bytes]]) -> None:
    # LEADER on every probe: with fast probes the mate's score depends on the threshold (FAST_ACCEPT)
    async with app_client(fast_probes=False) as c:
        for n, finger in enumerate(png_prints[:2]):
            await c.post("/api/v1/fingerprint/enroll", **_multipart(finger[0], subject_id=f"subject-{n}"))
        mate = (await c.post("/api/v1/fingerprint/verify", **_multipart(png_prints[0][1], subject_id="subject-0"))).json()
    strict = round(min(1.0, mate["score"] + 0.01), 6)  # a step above the mate's (rounded) score: no longer a match
    async with app_client(match_threshold=strict, fast_probes=False) as c:
        status = (await c.get("/api/v1/status")).json()["model"]
        assert status["threshold"]["value"] == strict and status["threshold"]["source"] == "setting"
        assert status["threshold_fmr_1e3"] != strict  # the card's own figures are still reported
        for n, finger in enumerate(png_prints[:2]):
            await c.post("/api/v1/fingerprint/enroll", **_multipart(finger[0], subject_id=f"subject-{n}"))
        r = (await c.post("/api/v1/fingerprint/verify", **_multipart(png_prints[0][1], subject_id="subject-0"))).json()
        assert r["score"] == mate["score"] and r["threshold"] == strict and r["match"] is False
        r = (await c.post("/api/v1/fingerprint/identify", **_multipart(png_prints[0][1]))).json()
        assert r["threshold"] == strict and r["candidates"] == []
        r = (await c.post("/api/v1/fingerprint/identify", **_multipart(png_prints[0][1], threshold=0.0))).json()
        assert r["candidates"][0]["subject_id"] == "subject-0"  # a request's own threshold still wins


@pytest.mark.parametrize("encode", [_multipart, _json])
async def test_enroll_verify_identify_erase(app_client: Callable[..., Any], png_prints: list[list[bytes]],
                                            encode: Callable[..., dict[str, Any]]) -> None:
    async with app_client() as c:
        for n, finger in enumerate(png_prints):
            r = await c.post("/api/v1/fingerprint/enroll", **encode(finger[0], subject_id=f"subject-{n}",
                                                                     finger="right_index"))
            assert r.status_code == 201, r.text
            body = r.json()
            assert body["subject_id"] == f"subject-{n}" and 0 <= body["quality"] <= 1 and body["template_id"]

        r = await c.post("/api/v1/fingerprint/identify", **encode(png_prints[2][1], top_k=4, threshold=0.0))
        assert r.status_code == 200, r.text
        cands = r.json()["candidates"]
        assert len(cands) == 4 and cands[0]["subject_id"] == "subject-2"
        assert [x["score"] for x in cands] == sorted((x["score"] for x in cands), reverse=True)
        assert set(cands[0]) == {"subject_id", "finger", "template_id", "score"}

        r = await c.post("/api/v1/fingerprint/verify", **encode(png_prints[1][2], subject_id="subject-1"))
        same = r.json()
        r = await c.post("/api/v1/fingerprint/verify", **encode(png_prints[1][2], subject_id="subject-3"))
        other = r.json()
        assert same["score"] > other["score"]
        # readiness rounds it to 4 decimals
        assert same["threshold"] == pytest.approx((await c.get("/api/v1/status")).json()["model"]["threshold"]["value"], abs=5e-5)

        r = await c.get("/api/v1/subjects/subject-1")
        assert r.status_code == 200
        templates = r.json()["templates"]
        assert len(templates) == 1 and "embedding" not in templates[0] and templates[0]["finger"] == "right_index"

        r = await c.delete("/api/v1/subjects/subject-1")
        assert r.json() == {"subject_id": "subject-1", "erased_templates": 1}
        assert (await c.get("/api/v1/subjects/subject-1")).status_code == 404
        r = await c.post("/api/v1/fingerprint/identify", **encode(png_prints[1][1], top_k=10, threshold=0.0))
        assert "subject-1" not in {x["subject_id"] for x in r.json()["candidates"]}
        status = (await c.get("/api/v1/status")).json()
        assert status["gallery"]["size"] == 3

        (t3,) = (await c.get("/api/v1/subjects/subject-3")).json()["templates"]
        r = await c.delete(f"/api/v1/templates/{t3['template_id']}")
        assert r.json() == {"template_id": t3["template_id"], "subject_id": "subject-3"}
        r = await c.post("/api/v1/fingerprint/identify", **encode(png_prints[3][1], top_k=10, threshold=0.0))
        assert "subject-3" not in {x["subject_id"] for x in r.json()["candidates"]}
        assert (await c.delete(f"/api/v1/templates/{t3['template_id']}")).json()["error"]["code"] == "template_not_found"
        assert (await c.delete("/api/v1/templates/not-a-template")).status_code == 400
        assert (await c.get("/api/v1/status")).json()["gallery"]["size"] == 2
        # a template in memory: the float16 search vector, plus the int8 grid for dense matching, plus
        # the stored minutiae (54 bytes of header and mask, 6 per minutia, at most 80 of each set), plus
        # once identify has used it, its minutiae sketch (60 bytes per LEADER minutia)
        grid_bytes = 64 * 10 * 10 if status["model"]["dense_matching"] else 0
        base = status["model"]["embedding_dim"] * 2 + grid_bytes
        assert base + 54 + 6 * 10 <= status["gallery"]["bytes_per_template"] <= base + 56 + 6 * 160 + 60 * 80


async def test_identify_defaults_to_calibrated_threshold(app_client: Callable[..., Any],
                                                         png_prints: list[list[bytes]]) -> None:
    async with app_client() as c:
        r = await c.post("/api/v1/fingerprint/identify", **_json(png_prints[0][0]))
        assert r.status_code == 200
        body = r.json()
        assert body["decision"] == "no_match" and body["candidates"] == []
        status = (await c.get("/api/v1/status")).json()
        threshold = status["model"]["threshold"]
        assert body["threshold"] == pytest.approx(threshold["value"], abs=5e-5) and threshold["value"] == threshold["floor"]


async def test_accepts_tiff_and_bmp_with_dpi(app_client: Callable[..., Any], prints: list[list[Any]]) -> None:
    async with app_client() as c:
        tiff = image_bytes(prints[0][0], "TIFF", compression="tiff_lzw")
        r = await c.post("/api/v1/fingerprint/enroll", files={"image": ("p.tif", tiff, "image/tiff")},
                         data={"subject_id": "t", "dpi": "500"})
        assert r.status_code == 201, r.text
        bmp = image_bytes(prints[0][1], "BMP")
        r = await c.post("/api/v1/fingerprint/verify", **_json(bmp, subject_id="t", dpi=508))
        assert r.status_code == 200, r.text


async def test_openapi_documents_every_endpoint(app_client: Callable[..., Any]) -> None:
    async with app_client() as c:
        doc = (await c.get("/schema/openapi.json")).json()
        paths = doc["paths"]
        for p in ("/health", "/api/v1/models/status", "/api/v1/fingerprint/enroll", "/api/v1/fingerprint/verify",
                  "/api/v1/fingerprint/identify", "/api/v1/subjects/{subject_id}", "/api/v1/status"):
            assert p in paths, p
        body = paths["/api/v1/fingerprint/enroll"]["post"]["requestBody"]["content"]
        assert "/metrics" not in paths  # served on its own listener (METRICS_PORT), never to API clients
        assert set(body) == {"multipart/form-data", "application/json"}
        assert "subject_id" in body["application/json"]["schema"]["required"]
        assert body["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
        # what a generated client needs to read naturally: named operations, the key as a bearer scheme on
        # exactly the routes a key opens
        assert doc["components"]["securitySchemes"]["bearerAuth"] == {
            "type": "http", "scheme": "bearer", "bearerFormat": "fpk_<id>_<secret>",
            "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]}
        ops = {(m, p): op for p, item in paths.items() for m, op in item.items()}
        assert {k: op["operationId"] for k, op in ops.items()} == {
            ("get", "/health"): "health", ("get", "/api/v1/models/status"): "readiness",
            ("get", "/api/v1/status"): "status", ("post", "/api/v1/fingerprint/enroll"): "enroll",
            ("post", "/api/v1/fingerprint/verify"): "verify", ("post", "/api/v1/fingerprint/identify"): "identify",
            ("get", "/api/v1/subjects"): "list_subjects", ("get", "/api/v1/subjects/{subject_id}"): "get_subject",
            ("delete", "/api/v1/subjects/{subject_id}"): "erase_subject",
            ("delete", "/api/v1/templates/{template_id}"): "erase_template",
            ("get", "/api/v1/templates/{template_id}/minutiae"): "export_minutiae"}
        enroll = paths["/api/v1/fingerprint/enroll"]["post"]
        (header,) = [p for p in enroll["parameters"] if p["in"] == "header"]
        assert header["name"] == "Idempotency-Key" and not header["required"]
        # the error codes as an enum, so a generated client can switch on them
        codes = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
        assert {"low_quality", "queue_full", "idempotency_key_reused"} <= set(codes.get("enum", []))
        public = {("get", "/health"), ("get", "/api/v1/models/status")}
        assert all(("security" in op) == (k not in public) for k, op in ops.items())


async def test_a_model_upgrade_keeps_the_templates_its_card_reads_and_reports_the_rest(
        app_client: Callable[..., Any], png_prints: list[list[bytes]], tmp_path: Path) -> None:
    def card(version: str, reads: list[str]) -> Path:
        return card_variant(tmp_path / version, version=version, reads_templates_of=reads)

    async with app_client(weights_path=card("9.0.0+a", [])) as c:
        r = await c.post("/api/v1/fingerprint/enroll", **_multipart(png_prints[0][0], subject_id="s0"))
        assert r.status_code == 201, r.text
    # same network, other scoring: the card says it reads 9.0.0's templates, so nobody re-enrolls
    async with app_client(weights_path=card("9.0.1+b", ["9.0.0+a"])) as c:
        gallery = (await c.get("/api/v1/status")).json()["gallery"]
        assert gallery["size"] == 1 and gallery["stale_templates"] == {}
        r = await c.post("/api/v1/fingerprint/identify", **_multipart(png_prints[0][1], top_k=1, threshold=0.0))
        assert r.json()["candidates"][0]["subject_id"] == "s0"
        assert (await c.post("/api/v1/fingerprint/enroll", **_multipart(png_prints[1][0], subject_id="s1"))).status_code == 201
    # a new network reads neither: nothing is loaded or lost, both versions are reported for re-enrolment
    async with app_client(weights_path=card("9.1.0+c", [])) as c:
        gallery = (await c.get("/api/v1/status")).json()["gallery"]
        assert gallery["size"] == 0 and gallery["stale_templates"] == {"9.0.0+a": 1, "9.0.1+b": 1}
