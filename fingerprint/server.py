"""uvicorn with a shutdown that drains (readiness 503 first, then close, then finish in-flight work),
bounded header and body times, and /metrics on a listener of its own."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

import uvicorn
from prometheus_client import start_http_server

from fingerprint.app import create_app
from fingerprint.model.allocator import keep_freed_memory
from fingerprint.security.timeouts import with_header_timeout
from fingerprint.service import FingerprintService
from fingerprint.settings import Settings, SettingsError
from fingerprint.telemetry.metrics import Telemetry


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, delay: float) -> None:
        super().__init__(config)
        self._delay = delay
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or (sig == signal.SIGINT and self.should_exit):
            super().handle_exit(sig, frame)
            return
        self._draining = True
        service: FingerprintService | None = getattr(getattr(self.config.app, "state", None), "service", None)
        if service is not None:
            service.draining = True  # readiness probes now fail; traffic is still served
        loop = asyncio.get_event_loop()
        loop.call_later(self._delay, lambda: uvicorn.Server.handle_exit(self, sig, frame))


def run_server(settings: Settings) -> None:
    keep_freed_memory()  # before the models load: LEADER's activations are reused, not faulted in per request
    app = create_app(settings)
    metrics = None
    if settings.enable_metrics:
        telemetry: Telemetry = app.state.telemetry
        try:
            metrics, _ = start_http_server(settings.metrics_port, settings.metrics_host, registry=telemetry.registry)
        except OSError as exc:
            raise SettingsError(f"cannot listen for /metrics on {settings.metrics_host}:{settings.metrics_port}: {exc}") from exc
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, workers=1, log_config=None, access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace), lifespan="on",
        http=with_header_timeout(settings.header_timeout), server_header=False,
        # X-Forwarded-For is believed only from the proxies named in TRUSTED_PROXIES
        proxy_headers=bool(settings.trusted_proxies), forwarded_allow_ips=list(settings.trusted_proxies),
    )
    try:
        _DrainingServer(config, settings.shutdown_delay).run()
    finally:
        if metrics is not None:
            metrics.shutdown()
