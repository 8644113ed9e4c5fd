"""Every request is one ECS JSON line with the fields Logstash expects, and never carries biometric data."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


async def test_request_lines_are_ecs_json(app_client: Callable[..., Any], png_prints: list[list[bytes]],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    image = png_prints[0][0]
    b64 = base64.b64encode(image).decode()
    async with app_client() as c:
        capsys.readouterr()
        r = await c.post("/api/v1/fingerprint/enroll", json={"image": b64, "subject_id": "log-subject"},
                         headers={"X-Request-ID": "req-123",
                                  "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        assert r.status_code == 201 and r.headers["x-request-id"] == "req-123"
        bad = await c.post("/api/v1/fingerprint/identify", json={"image": "***"})
        assert bad.status_code == 400 and len(bad.headers["x-request-id"]) == 32
    out = capsys.readouterr().out
    lines = _lines(out)
    access = [x for x in lines if x.get("message") == "request"]
    assert len(access) >= 2
    ok = next(x for x in access if x["http"]["request"]["id"] == "req-123")
    assert ok["log.level"] == "info" and ok["@timestamp"].endswith("Z")
    assert ok["trace"]["id"] == "4bf92f3577b34da6a3ce929d0e0e4736"  # continued from the caller's traceparent
    assert ok["service"] == {"name": "fingerprint-api", "version": ok["service"]["version"]}
    assert ok["http"]["request"]["method"] == "POST"
    assert ok["url"]["path"] == "/api/v1/fingerprint/enroll"
    assert ok["http"]["response"]["status_code"] == 201
    assert isinstance(ok["event"]["duration"], int) and ok["event"]["duration"] > 0
    failed = next(x for x in access if x["http"]["response"]["status_code"] == 400)
    assert failed["error"] == {"code": "invalid_base64", "type": "client_error"}
    # nothing biometric: no image bytes (raw or base64 fragments), no embedding-like float arrays
    assert b64[:64] not in out and b64[-64:] not in out
    assert image[:32].decode("latin-1") not in out
    for x in lines:
        assert not any(isinstance(v, list) and len(v) > 16 for v in x.values())


async def test_log_level_filters(app_client: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    async with app_client(log_level="WARNING") as c:
        capsys.readouterr()
        await c.get("/api/v1/subjects/someone")
    assert not [x for x in _lines(capsys.readouterr().out) if x.get("log.level") == "info"]


def test_uvicorns_lines_have_the_apps_format(capsys: pytest.CaptureFixture[str]) -> None:
    """One format on stdout: a stdlib logger's line (uvicorn's) is ECS like the app's own."""
    import logging

    import structlog

    from fingerprint.telemetry.logging import configure_logging

    configure_logging("INFO", "fingerprint-api", "9.9.9")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42, extra={"color_message": "\x1b[1m"})
    structlog.get_logger("fingerprint.test").info("app line")
    uvicorn_line, app_line = _lines(capsys.readouterr().out)[-2:]
    assert uvicorn_line["message"] == "Started server process [42]" and app_line["message"] == "app line"
    for line in (uvicorn_line, app_line):
        assert line["log.level"] == "info" and line["ecs.version"]
        assert line["service"] == {"name": "fingerprint-api", "version": "9.9.9"}
        assert line["@timestamp"].endswith("Z") and "." in line["@timestamp"]  # UTC, milliseconds
    assert "color_message" not in uvicorn_line and "process" not in uvicorn_line
