"""What lives for the app's lifetime: store, service (model, queue, batcher, index)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar

from fingerprint.gallery.factory import create_store
from fingerprint.service import FingerprintService
from fingerprint.settings import Settings
from fingerprint.telemetry.metrics import Telemetry

log = structlog.get_logger("fingerprint.lifespan")


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    telemetry: Telemetry = app.state.telemetry
    store = create_store(settings)
    await store.open()
    service = FingerprintService(settings, store, telemetry, app.state.embedder_factory)
    app.state.service = service
    # the model loads in the background: /health answers at once, readiness turns 200 when warm
    loading = asyncio.create_task(service.load(), name="model-load")
    try:
        yield
    finally:
        service.draining = True
        if not loading.done():
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
        try:
            await asyncio.wait_for(service.stop(), timeout=settings.shutdown_grace)
        except TimeoutError:
            log.error("shutdown grace period exceeded; queued work abandoned")
        await store.close()
        telemetry.shutdown()
        log.info("stopped")
