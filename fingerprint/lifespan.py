"""What lives for the app's lifetime: store, service (model, queue, batcher, index)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar

from fingerprint.gallery.background import cancel_and_wait
from fingerprint.gallery.factory import create_store, create_vector_engine
from fingerprint.service import FingerprintService
from fingerprint.settings import Settings
from fingerprint.telemetry.metrics import Telemetry

log = structlog.get_logger("fingerprint.lifespan")


def _log_failure(task: asyncio.Task[None]) -> None:
    """A bug in loading must be in the log when it happens, not as "never retrieved" at shutdown."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.error("model load crashed", **{"error.type": type(exc).__name__}, exc_info=exc)


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    telemetry: Telemetry = app.state.telemetry
    store = create_store(settings, app.state.template_cipher)
    await store.open()
    service = FingerprintService(settings, store, telemetry, app.state.embedder_factory, create_vector_engine(settings))
    app.state.service = service
    # the model loads in the background: /health answers at once, readiness turns 200 when warm
    loading = asyncio.create_task(service.load(), name="model-load")
    loading.add_done_callback(_log_failure)
    try:
        yield
    finally:
        service.draining = True
        if not loading.done():  # one that ended has been logged by _log_failure
            await cancel_and_wait(loading)
        try:
            await asyncio.wait_for(service.stop(), timeout=settings.shutdown_grace)
        except TimeoutError:
            log.error("shutdown grace period exceeded; queued work abandoned")
        await store.close()
        telemetry.shutdown()
        log.info("stopped")
