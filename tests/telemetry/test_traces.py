"""With OTEL_EXPORTER_OTLP_ENDPOINT set, a real server ships each request's span over OTLP/HTTP; off by default."""

from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fingerprint.settings import SettingsError, load_settings
from tests.process import Server

pytestmark = pytest.mark.slow


def test_spans_reach_an_otlp_collector(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    image = base64.b64encode(png_prints[0][0]).decode()
    server = Server(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_port}")
    try:
        server.wait_ready()
        r = httpx.post(server.url + "/api/v1/fingerprint/enroll", json={"image": image, "subject_id": "traced"},
                       headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, timeout=60)
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                s.name == "POST /api/v1/fingerprint/enroll" for q in received
                for rs in q.resource_spans for ss in rs.scope_spans for s in ss.spans):
            time.sleep(0.2)
    finally:
        server.stop()
        collector.shutdown()
    spans = [(rs, s) for q in received for rs in q.resource_spans for ss in rs.scope_spans for s in ss.spans]
    resource, span = next((rs, s) for rs, s in spans if s.name == "POST /api/v1/fingerprint/enroll")
    assert span.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"  # continued from the caller
    attributes = {a.key: a.value for a in resource.resource.attributes}
    assert attributes["service.name"].string_value == "fingerprint-api"
    assert image[:64].encode() not in b"".join(q.SerializeToString() for q in received)  # nothing biometric


def test_the_endpoint_must_be_a_url() -> None:
    assert load_settings({}).otel_exporter_otlp_endpoint == ""  # off by default
    with pytest.raises(SettingsError):
        load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})
