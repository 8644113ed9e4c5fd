"""uvicorn with a shutdown that drains: readiness 503 first, then close, then finish in-flight work."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

import uvicorn

from fingerprint.app import create_app
from fingerprint.service import FingerprintService
from fingerprint.settings import Settings


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
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, workers=1, log_config=None, access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace), lifespan="on",
    )
    _DrainingServer(config, settings.shutdown_delay).run()
