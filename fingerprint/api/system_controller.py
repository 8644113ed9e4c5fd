"""Liveness and readiness for anyone (they say only whether and why not); the details for admins."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from fingerprint.api.schemas import (
    EngineInfo,
    ErrorResponse,
    GalleryInfo,
    HealthResponse,
    ModelInfo,
    QueueInfo,
    ReadinessResponse,
    StatusResponse,
    ThresholdInfo,
)
from fingerprint.outcomes import NotReady
from fingerprint.security.guards import BEARER, may_see, requires
from fingerprint.service import FingerprintService


class SystemController(Controller):
    tags = ["system"]

    @get("/health", operation_id="health", summary="Liveness: 200 while the process can serve")
    async def health(self) -> HealthResponse:
        return HealthResponse(status="ok")

    @get("/api/v1/models/status", operation_id="readiness", summary="Readiness: 200 once the model is loaded and warm",
         description="`degraded`: identify and verify serve from memory while the gallery store cannot be "
                     "written (`store`: `unavailable` or `disk_full`). Answers from state kept by a background "
                     "check: never waits on the database. With an admin key, also the decision `threshold`: its "
                     "value, whether the gallery's own impostor scores set it (`source`: `gallery`) or the model "
                     "card's prior still does (`model_card`: fewer than `needed` scores yet), the card's synthetic "
                     "`floor` where it is higher (`synthetic_floor`), or MATCH_THRESHOLD (`setting`).",
         responses={503: ResponseSpec(data_container=ErrorResponse, description="not ready, with the reason's code")})
    async def model_status(self, request: Request[Any, Any, Any],
                           service: NamedDependency[FingerprintService]) -> ReadinessResponse:
        if service.draining:
            raise NotReady("shutting_down", "the service is shutting down")
        _, _, meta = service.require_ready()
        # the threshold and how it was estimated: an anonymous caller learns only whether the service is ready
        if not may_see(request, "admin"):
            return ReadinessResponse(status=service.health.readiness, store=service.health.state, model_version=meta.version)
        return ReadinessResponse(status=service.health.readiness, store=service.health.state, model_version=meta.version,
                                 threshold=ThresholdInfo.of(service.decision_threshold()),
                                 templates_by_version=service.health.templates_by_version)

    @get("/api/v1/status", guards=[requires("admin")], operation_id="status", security=BEARER,
         summary="Model, queue, gallery and store details (admin)",
         responses={401: ResponseSpec(data_container=ErrorResponse, description="missing or invalid API key"),
                    403: ResponseSpec(data_container=ErrorResponse, description="API key lacks the admin scope"),
                    503: ResponseSpec(data_container=ErrorResponse, description="not ready")})
    async def status(self, request: Request[Any, Any, Any], service: NamedDependency[FingerprintService]) -> StatusResponse:
        s = service.status()
        by_version = await service.records.templates_by_version()
        return StatusResponse(
            status=s.status, store=s.store,
            model=ModelInfo(name=s.model_name, version=s.model_version, sha256=s.sha256, embedding_dim=s.embedding_dim,
                            load_seconds=s.load_seconds, threshold_fmr_1e2=s.threshold_fmr_1e2,
                            threshold_fmr_1e3=s.threshold_fmr_1e3, threshold=ThresholdInfo.of(s.threshold),
                            dense_matching=s.dense_matching, precision=s.precision,
                            probe_minutiae=s.probe_minutiae),
            queue=QueueInfo(depth=s.queue_depth, capacity=s.queue_capacity, max_capacity=s.queue_max_capacity),
            gallery=GalleryInfo(size=s.gallery_size, stale_templates=s.stale_templates,
                                bytes_per_template=s.bytes_per_template, refused_templates=s.refused_templates,
                                templates_by_version=by_version,
                                engine=None if s.engine is None else EngineInfo.of(s.engine)),
        )
