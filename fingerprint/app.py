"""The app factory: settings in, Litestar app out."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from fingerprint import __version__
from fingerprint.api.errors import EXCEPTION_HANDLERS
from fingerprint.api.fingerprint_controller import FingerprintController
from fingerprint.api.subjects_controller import SubjectsController
from fingerprint.api.system_controller import SystemController, metrics_endpoint
from fingerprint.lifespan import lifespan
from fingerprint.security.api_keys import KeyRing, bearer_token, split_key
from fingerprint.security.headers import security_headers
from fingerprint.service import EmbedderFactory, FingerprintService, load_torch_embedder
from fingerprint.settings import Settings, load_settings
from fingerprint.telemetry.http_middleware import request_telemetry
from fingerprint.telemetry.logging import configure_logging
from fingerprint.telemetry.metrics import Telemetry


def _provide_service(request: Request[Any, Any, Any]) -> FingerprintService:
    service: FingerprintService = request.app.state.service
    return service


def _rate_limit_identity(request: Request[Any, Any, Any]) -> str:
    """Bucket by API key id (cheap to read; the guard verifies the key), else by client address."""
    split = split_key(bearer_token(request.headers.get("authorization", "")))
    if split is not None:
        return f"key:{split[0]}"
    client = request.client
    return f"addr:{client.host if client else 'unknown'}"


def create_app(settings: Settings | None = None, embedder_factory: EmbedderFactory = load_torch_embedder) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.service_name, __version__)
    telemetry = Telemetry(settings.service_name, __version__)
    key_ring = KeyRing.from_file(settings.api_keys_file) if settings.api_keys_file else None
    rate_limit = None
    if settings.rate_limit_per_second > 0:
        rate_limit = RateLimitConfig(
            rate_limit=("second", settings.rate_limit_per_second), identifier_for_request=_rate_limit_identity,
            exclude=["/health", "/metrics", "/api/v1/models/status", "/schema"])
    cors = CORSConfig(allow_origins=list(settings.cors_origins) or ["*"]) if settings.enable_cors else None
    handlers: list[Any] = [SystemController, FingerprintController, SubjectsController]
    if settings.enable_metrics:
        handlers.append(metrics_endpoint)
    return Litestar(
        route_handlers=handlers,
        dependencies={"service": Provide(_provide_service, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[lambda app: request_telemetry(app, telemetry), security_headers,
                    *([rate_limit.middleware] if rate_limit else [])],
        lifespan=[lifespan],
        state=State({"settings": settings, "telemetry": telemetry, "embedder_factory": embedder_factory,
                     "key_ring": key_ring}),
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Fingerprint API", version=__version__, path="/schema", render_plugins=[JsonRenderPlugin()],
            description="Enroll, verify (1:1) and identify (1:N) fingerprints with a fixed-length embedding.",
        ),
        logging_config=None,
        debug=False,
    )
