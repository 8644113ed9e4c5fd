"""The fingerprint operations (enroll, verify, identify, erase) over the pipeline, store and index."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Literal

import structlog

from fingerprint.batching.admission import Admission
from fingerprint.batching.deadline import Deadline
from fingerprint.batching.pipeline import InferencePipeline, PipelineLimits
from fingerprint.enrolment import Enrolment
from fingerprint.gallery.engine_shortlist import EngineShortlist, EngineSync
from fingerprint.gallery.health import StoreHealth
from fingerprint.gallery.identifiers import check_subject_id
from fingerprint.gallery.impostors import (
    DecisionThreshold,
    ImpostorEstimator,
    ImpostorSample,
    SyntheticTail,
    ThresholdEstimate,
    answer_is_clear,
    best_and_rival,
)
from fingerprint.gallery.index import GalleryIndex, Hit
from fingerprint.gallery.sketches import SketchWarmer
from fingerprint.gallery.store import (
    GalleryStore,
    StoreUnavailable,
)
from fingerprint.gallery.sync import GallerySync
from fingerprint.gallery.vector_engine import VectorEngine
from fingerprint.model.comparator import Comparator
from fingerprint.model.embedder import Embedder, TorchEmbedder, time_extraction
from fingerprint.model.weights import ModelMeta
from fingerprint.outcomes import (
    Candidate,
    Enrolled,
    Identified,
    NotReady,
    Status,
    SubjectNotFound,
    Verified,
)
from fingerprint.records import GalleryRecords
from fingerprint.settings import Settings
from fingerprint.telemetry.metrics import Telemetry

log = structlog.get_logger("fingerprint.service")


@dataclass
class ModelState:
    meta: ModelMeta | None = None
    load_seconds: float | None = None
    precision: str = "float32"  # what the network computes in (Embedder.precision)
    probe_minutiae: str = "leader"  # what finds a probe's LEADER minutiae: api/schemas.py ModelInfo
    error: str | None = None
    stale_templates: dict[str, int] = field(default_factory=dict)


EmbedderFactory = Callable[[Settings], Embedder]


def load_torch_embedder(settings: Settings) -> Embedder:
    embedder = TorchEmbedder(settings.weights_path, settings.max_image_pixels, settings.torch_threads,
                             settings.inference_precision, settings.fast_probes)
    embedder.warm_up()
    return embedder


class FingerprintService:
    def __init__(self, settings: Settings, store: GalleryStore, telemetry: Telemetry,
                 embedder_factory: EmbedderFactory = load_torch_embedder, vector_engine: VectorEngine | None = None) -> None:
        """`vector_engine`: identify's first stage from that engine (gallery/engine_shortlist.py)."""
        self.settings = settings
        self._embedder_factory = embedder_factory
        self._vector_engine = vector_engine
        self.engine_sync: EngineSync | None = None
        self.store = store
        self.telemetry = telemetry
        self.admission = Admission(settings.max_pool_size, on_refused=lambda: telemetry.dropped("queue_full"),
                                   stage_deadline=settings.feature_extraction_timeout,
                                   # extractions share the cores (CoreShare): the stage finishes about one
                                   # print per measured latency however many run at once
                                   parallelism=1)
        self.model = ModelState()
        self.pipeline: InferencePipeline | None = None
        self.index: GalleryIndex | None = None
        self.draining = False
        self.sync: GallerySync | None = None
        self.store_error: str | None = None  # the gallery could not be loaded yet (database down): retrying
        self.gallery_error: str | None = None  # the gallery cannot be loaded as configured: not retried
        self.health = StoreHealth(store, settings.gallery_sync_interval)
        self.records = GalleryRecords(store, self.health, self._count, lambda: (self.sync, self.index))
        self.enrolment = Enrolment(settings, store, self.health, self._count, self.require_ready, lambda: self.sync)
        self.threshold: DecisionThreshold | None = None
        self.impostors: ImpostorEstimator | None = None
        self.sketches: SketchWarmer | None = None
        telemetry.gauge("fingerprint.queue.depth", lambda: self.admission.depth)
        telemetry.gauge("fingerprint.queue.capacity", lambda: self.admission.capacity)
        telemetry.gauge("fingerprint.model.loaded", lambda: 1.0 if self.ready else 0.0)
        telemetry.gauge("fingerprint.gallery.templates", lambda: len(self.index) if self.index else 0)

    @property
    def ready(self) -> bool:
        return self.pipeline is not None and self.index is not None and not self.draining

    async def load(self) -> None:
        """Load and warm the model, then the gallery; on failure stay unready with the reason."""
        started = time.perf_counter()
        try:
            embedder = await asyncio.to_thread(self._embedder_factory, self.settings)
        except Exception as exc:
            self.model.error = str(exc)
            self.telemetry.model_load_failures.add(1)
            log.error("model load failed", **{"error.type": type(exc).__name__, "error.message": str(exc)})
            return
        meta = embedder.meta
        self.telemetry.set_model_version(meta.version)
        readable = meta.readable_versions()
        # one scorer: the index compares with it what the pipeline builds probes with
        comparator = replace(Comparator.from_card(meta), minutiae_shortlist=self.settings.identify_minutiae_shortlist,
                             sketch_shortlist=self.settings.identify_sketch_shortlist)
        backoff = 0.5
        while True:  # the database may be down at start-up: keep trying, readiness says why
            engine = None if self._vector_engine is None else EngineShortlist("milvus")
            index = GalleryIndex(meta.embedding_dim, comparator, engine=engine)
            try:
                await self._load_gallery(index, readable)
                counts = await self.store.count_by_version()
                self.store_error = None
                break
            except Exception as exc:
                if not isinstance(exc, StoreUnavailable):
                    return self._gallery_failed(f"{type(exc).__name__}: {exc}")
                if self.sync is not None:
                    await self.sync.stop()
                    self.sync = None
                if self.store_error is None:
                    log.error("gallery load failed; retrying", **{"error.type": "StoreUnavailable"})
                self.store_error = str(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        refused = self.store.codec.refused
        if refused and not len(index):
            return self._gallery_failed(f"none of the stored templates could be opened ({refused} refused): "
                                        "is TEMPLATE_KEY_FILE the key the gallery was sealed with?")
        self.model.stale_templates = {v: n for v, n in counts.items() if v not in readable}
        limits = PipelineLimits(
            feature_extraction_timeout=self.settings.feature_extraction_timeout,
            inference_timeout=self.settings.inference_timeout,
            max_batch_size=self.settings.max_batch_size,
            max_batch_wait_s=self.settings.max_batch_wait_ms / 1000.0,
            workers=self.settings.workers,
            compute_niceness=self.settings.compute_niceness,
            torch_threads=self.settings.torch_threads or os.cpu_count() or 1,
        )
        probe_builder = comparator.probe if comparator.fuses_minutiae else None
        pipeline = InferencePipeline(embedder, self.admission, limits, self.telemetry, probe_builder)
        pipeline.start()
        # what one extraction costs on this machine, before the first request: the admission's first sizing
        self.admission.observe_stage(await asyncio.to_thread(time_extraction, embedder))
        self.model.meta = meta
        self.model.precision = embedder.precision
        self.model.probe_minutiae = "leader" if not embedder.distinct_probe_minutiae else \
            "distilled_then_leader" if self.settings.fast_accept > 0 else "distilled"
        self.model.load_seconds = time.perf_counter() - started
        sample = ImpostorSample()
        self.threshold = DecisionThreshold(self.settings.target_fmr, meta.threshold_fmr_1e3, self.settings.match_threshold,
                                           sample, meta.impostor_tail_factor, SyntheticTail.of_card(meta))
        self.impostors = ImpostorEstimator(index, sample, self.settings.gallery_sync_interval)
        self.impostors.start()
        self.sketches = SketchWarmer(index)
        self.sketches.start()
        if self._vector_engine is not None:
            self.engine_sync = EngineSync.of(index, partial(self._vector_engine, meta.version, meta.embedding_dim),
                                             self.store, self.settings.gallery_sync_interval)
            self.engine_sync.start()
        self.index = index
        self.pipeline = pipeline
        await self.health.census()
        self.health.start()
        log.info("model ready", **{"model.version": meta.version, "model.precision": embedder.precision,
                                   "model.probe_minutiae": self.model.probe_minutiae,
                                   "gallery.size": len(index),
                                   "event.duration": int(self.model.load_seconds * 1e9)})

    def _gallery_failed(self, reason: str) -> None:
        self.gallery_error = reason
        log.error("gallery load failed; not ready until the configuration is fixed",
                  **{"error.type": "GalleryUnreadable", "error.message": reason})

    async def _load_gallery(self, index: GalleryIndex, versions: tuple[str, ...]) -> None:
        seq = await self.store.load(versions, index.add_template)
        # a shared store hands back what keeps this replica's index in step with it; an embedded one, nothing
        self.sync = self.store.follower(index, versions, seq, self.settings.gallery_sync_interval)
        if self.sync is not None:
            self.sync.start()

    async def stop(self) -> None:
        """Finish admitted work and stop the pipeline (the listener is already closed)."""
        self.draining = True
        await self.health.stop()
        if self.impostors is not None:
            await self.impostors.stop()
        if self.sketches is not None:
            await self.sketches.stop()
        if self.sync is not None:
            await self.sync.stop()
        if self.engine_sync is not None:
            await self.engine_sync.stop()
        if self.pipeline is not None:
            await self.pipeline.stop()

    def require_ready(self) -> tuple[InferencePipeline, GalleryIndex, ModelMeta]:
        # while draining, readiness is 503 but admitted traffic is still served until the listener closes
        if self.pipeline is None or self.index is None or self.model.meta is None:
            if self.gallery_error:
                raise NotReady("gallery_unreadable", "the gallery cannot be read as configured; see the service log")
            if self.store_error:
                raise StoreUnavailable(self.store_error)
            if self.model.error:
                raise NotReady("model_unavailable", "the model failed to load; see the service log")
            raise NotReady("model_loading", "the model is still loading")
        return self.pipeline, self.index, self.model.meta

    def reject_if_saturated(self) -> None:
        """Refuse before parsing the body when the queue is already full: overload must be cheap to refuse."""
        self.admission.refuse_if_full()

    def _deadline(self) -> Deadline:
        return Deadline.after(self.settings.request_timeout)

    def _public(self, score: float) -> float:
        return round(score, self.settings.score_decimals)

    def client_gone(self) -> None:
        self.telemetry.dropped("client_gone")

    def _count(self, operation: str, result: str) -> None:
        self.telemetry.operations.add(1, {"operation": operation, "result": result})

    async def enroll(self, image: bytes, dpi: float | None, subject_id: str, finger: str | None,
                     idempotency_key: str | None = None, caller: str = "") -> Enrolled:
        """Extract and store one template (fingerprint/enrolment.py)."""
        return await self.enrolment.enroll(image, dpi, subject_id, finger, idempotency_key, caller)

    def decision_threshold(self) -> ThresholdEstimate:
        """What verify and identify decide with now, and where it comes from (gallery/impostors.py)."""
        if self.threshold is None:
            raise NotReady("model_loading", "the model is still loading")
        return self.threshold.estimate()

    async def verify(self, image: bytes, dpi: float | None, subject_id: str) -> Verified:
        check_subject_id(subject_id)
        pipeline, index, meta = self.require_ready()
        if not index.has_subject(subject_id):
            raise SubjectNotFound(subject_id)
        threshold = self.decision_threshold().value
        hit = await pipeline.match(image, dpi, self._deadline(),
                                   lambda probe: index.best_for_subject(probe.views, subject_id, probe.dense,
                                                                            probe.comparable_minutiae),
                                   lambda found: found is None or self._settled(found.score, threshold))
        if hit is None:  # erased while the probe was being embedded
            raise SubjectNotFound(subject_id)
        match = hit.score >= threshold
        self._count("verify", "match" if match else "no_match")
        return Verified(subject_id, match, self._public(hit.score), threshold, hit.template_id, meta.version)

    async def identify(self, image: bytes, dpi: float | None, top_k: int, threshold: float | None) -> Identified:
        pipeline, index, meta = self.require_ready()
        used = self.decision_threshold().value if threshold is None else threshold
        hits: list[Hit] = await pipeline.match(
            image, dpi, self._deadline(),
            lambda probe: index.search_views(probe.views, top_k, probe.dense, probe.comparable_minutiae),
            lambda found: self._settled_identify(found, used))
        candidates = [Candidate(h.subject_id, h.finger, h.template_id, self._public(h.score)) for h in hits if h.score >= used]
        decision: Literal["match", "no_match"] = "match" if candidates else "no_match"
        self._count("identify", decision)
        return Identified(decision, candidates, used, meta.version)

    def _settled(self, best: float, threshold: float, rival: float = 0.0) -> bool:
        """Whether a fast probe's answer stands (`answer_is_clear`); otherwise it is compared again on LEADER's
        minutiae, counted as the share of requests that pay for both."""
        if answer_is_clear(best, rival, threshold, self.settings.fast_accept, self.settings.fast_reject):
            return True
        self.telemetry.probes_refined.add(1)
        return False

    def _settled_identify(self, hits: list[Hit], threshold: float) -> bool:
        best, rival = best_and_rival(hits)
        return self._settled(best, threshold, rival)

    def status(self) -> Status:
        _, index, meta = self.require_ready()
        return Status(
            status=self.health.readiness, store=self.health.state, model_name=meta.name, model_version=meta.version,
            sha256=meta.sha256,
            embedding_dim=meta.embedding_dim, load_seconds=round(self.model.load_seconds or 0.0, 3),
            threshold_fmr_1e2=meta.threshold_fmr_1e2, threshold_fmr_1e3=meta.threshold_fmr_1e3,
            threshold=self.decision_threshold(), dense_matching=meta.dense_matching,
            precision=self.model.precision, probe_minutiae=self.model.probe_minutiae,
            queue_depth=self.admission.depth, queue_capacity=self.admission.capacity,
            queue_max_capacity=self.admission.max_capacity,
            gallery_size=len(index), stale_templates=self.model.stale_templates,
            bytes_per_template=index.bytes_per_template, refused_templates=self.store.codec.refused,
            engine=None if index.engine is None else index.engine.status())
