"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from fingerprint.api.schemas import ErrorResponse, GalleryInfo, HealthResponse, ModelInfo, QueueInfo, StatusResponse
from fingerprint.service import FingerprintService, NotReady


class SystemController(Controller):
    tags = ["system"]

    @get("/health", summary="Liveness: 200 while the process can serve")
    async def health(self) -> HealthResponse:
        return HealthResponse(status="ok")

    @get("/api/v1/models/status", summary="Readiness: 200 once the model is loaded and warm",
         responses={503: ResponseSpec(data_container=ErrorResponse, description="not ready")})
    async def model_status(self, service: NamedDependency[FingerprintService]) -> StatusResponse:
        if service.draining:
            raise NotReady("shutting_down", "the service is shutting down")
        _, index, meta = service.require_ready()
        threshold, source = service.default_threshold(meta)
        await service.store.ping()  # StoreUnavailable -> 503 store_unavailable, like every other route
        return StatusResponse(
            status="ready",
            model=ModelInfo(name=meta.name, version=meta.version, sha256=meta.sha256, embedding_dim=meta.embedding_dim,
                            load_seconds=round(service.model.load_seconds or 0.0, 3),
                            threshold_fmr_1e2=meta.threshold_fmr_1e2, threshold_fmr_1e3=meta.threshold_fmr_1e3,
                            default_threshold=threshold, threshold_source=source,
                            dense_matching=meta.dense_matching, precision=service.model.precision),
            queue=QueueInfo(depth=service.admission.depth, capacity=service.admission.capacity),
            gallery=GalleryInfo(size=len(index), stale_templates=service.model.stale_templates,
                                bytes_per_template=index.bytes_per_template),
        )


@get("/metrics", summary="Prometheus text exposition (only when ENABLE_METRICS)", media_type="text/plain",
     tags=["system"])
async def metrics_endpoint(service: NamedDependency[FingerprintService]) -> Response[bytes]:
    return Response(service.telemetry.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
