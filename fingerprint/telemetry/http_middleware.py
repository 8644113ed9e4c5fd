"""Per request: a request id, one ECS access-log line, and the HTTP duration histogram.

Labels use the route template (`/api/v1/subjects/{subject_id:str}`), never the raw path, so subject
ids stay out of metrics. The log line carries method, path, status, duration and error code only:
never the body, which may be a fingerprint image.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind

from fingerprint.telemetry.metrics import Telemetry

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = structlog.get_logger("fingerprint.access")


def request_telemetry(app: ASGIApp, telemetry: Telemetry) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
        span = telemetry.tracer.start_span(str(scope.get("method", "")), context=extract(carrier), kind=SpanKind.SERVER)
        trace_id = format(span.get_span_context().trace_id, "032x")
        structlog.contextvars.bind_contextvars(**{"http.request.id": request_id, "trace.id": trace_id})
        try:
            await app(scope, receive, send_with_id)
        finally:
            span.set_attribute("http.response.status_code", status)
            span.update_name(f"{scope.get('method', '')} {scope.get('path_template') or 'unmatched'}")
            span.end()
            elapsed = time.perf_counter() - started
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", ""))
            telemetry.http_duration.record(elapsed, {
                "http.request.method": method, "http.route": route, "http.response.status_code": status,
            })
            fields: dict[str, str | int] = {
                "http.request.method": method, "url.path": scope.get("path", ""), "http.route": route,
                "http.response.status_code": status, "event.duration": int(elapsed * 1e9),
            }
            code = scope.get("state", {}).get("error_code")
            if code:
                fields["error.code"] = code
                fields["error.type"] = "client_error" if status < 500 else "server_error"
            if route not in ("/health", "/metrics") or status >= 400:
                (log.warning if status >= 500 else log.info)("request", **fields)
            structlog.contextvars.unbind_contextvars("http.request.id", "trace.id")

    return middleware
