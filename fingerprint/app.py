"""The app factory: settings in, Litestar app out."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from fingerprint import __version__
from fingerprint.api.errors import EXCEPTION_HANDLERS
from fingerprint.api.fingerprint_controller import FingerprintController
from fingerprint.api.subjects_controller import SubjectsController
from fingerprint.api.system_controller import SystemController
from fingerprint.api.templates_controller import TemplatesController
from fingerprint.gallery.factory import load_template_cipher
from fingerprint.lifespan import lifespan
from fingerprint.security.api_keys import KeyRing
from fingerprint.security.guards import BEARER_SCHEME, verified_key
from fingerprint.security.headers import security_headers
from fingerprint.security.timeouts import body_deadline
from fingerprint.service import EmbedderFactory, FingerprintService, load_torch_embedder
from fingerprint.settings import Settings, SettingsError, load_settings
from fingerprint.telemetry.http_middleware import request_telemetry
from fingerprint.telemetry.logging import configure_logging
from fingerprint.telemetry.metrics import Telemetry

log = structlog.get_logger("fingerprint.app")


def _provide_service(request: Request[Any, Any, Any]) -> FingerprintService:
    service: FingerprintService = request.app.state.service
    return service


def _rate_limit_identity(request: Request[Any, Any, Any]) -> str:
    """Bucket by verified API key, else by client address: an unverified key id is the caller's choice, so
    rotating ids must not buy fresh buckets (verifying costs a microsecond, see api_keys)."""
    principal = verified_key(request)
    if principal is not None:
        return f"key:{principal.key_id}"
    client = request.client
    return f"addr:{client.host if client else 'unknown'}"


def _load_key_ring(settings: Settings) -> KeyRing | None:
    if settings.api_keys_file is None:
        return None
    try:
        ring = KeyRing.from_file(settings.api_keys_file)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"API_KEYS_FILE={settings.api_keys_file} is not a usable keys file "
                            f"({type(exc).__name__}: {exc})") from exc
    if ring.legacy_ids:
        log.warning("legacy scrypt API keys: re-issue them with `fingerprint create-key`", **{"key.ids": ring.legacy_ids})
    return ring


def create_app(settings: Settings | None = None, embedder_factory: EmbedderFactory = load_torch_embedder) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.service_name, __version__)
    telemetry = Telemetry(settings.service_name, __version__, settings.otel_exporter_otlp_endpoint)
    key_ring = _load_key_ring(settings)
    cipher = load_template_cipher(settings)
    rate_limit = None
    if settings.rate_limit_per_second > 0:
        rate_limit = RateLimitConfig(
            rate_limit=("second", settings.rate_limit_per_second), identifier_for_request=_rate_limit_identity,
            exclude=["/health", "/api/v1/models/status", "/schema"])
    cors = CORSConfig(allow_origins=list(settings.cors_origins) or ["*"]) if settings.enable_cors else None
    handlers: list[Any] = [SystemController, FingerprintController, SubjectsController, TemplatesController]
    app = Litestar(
        route_handlers=handlers,
        dependencies={"service": Provide(_provide_service, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[lambda app: body_deadline(app, settings.body_timeout),
                    *([rate_limit.middleware] if rate_limit else [])],
        lifespan=[lifespan],
        state=State({"settings": settings, "telemetry": telemetry, "embedder_factory": embedder_factory,
                     "key_ring": key_ring, "template_cipher": cipher}),
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Fingerprint API", version=__version__, path="/schema", render_plugins=[JsonRenderPlugin()],
            description="Enroll, verify (1:1) and identify (1:N) fingerprints with a fixed-length embedding.",
            components=Components(security_schemes={BEARER_SCHEME: SecurityScheme(
                type="http", scheme="bearer", bearer_format="fpk_<id>_<secret>",
                description="An API key (`fingerprint create-key`) as `Authorization: Bearer <key>`; "
                            "not needed when the server runs without API_KEYS_FILE")}),
        ),
        logging_config=None,
        debug=False,
    )
    # Around the router, not per route: Litestar runs route middleware only for matched routes, so 404 and
    # 405 answers would carry no request id, security headers, access log line or metric.
    app.asgi_handler = request_telemetry(security_headers(app.asgi_handler), telemetry)
    return app
