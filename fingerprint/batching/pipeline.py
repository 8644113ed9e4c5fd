"""The inference pipeline a request goes through: admission, feature extraction, batched inference."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fingerprint.batching.admission import Admission, QueueFull
from fingerprint.batching.batcher import BatchObserver, MicroBatcher
from fingerprint.batching.deadline import Deadline, StageTimeout
from fingerprint.batching.priority import lower_thread_priority
from fingerprint.model.embedder import Embedder, Embedding, PreparedImage


class LowQuality(Exception):
    def __init__(self, quality: float, minimum: float) -> None:
        super().__init__(f"image quality {quality:.2f} is below the minimum {minimum:.2f}")
        self.quality = quality
        self.minimum = minimum


@dataclass(frozen=True)
class Extracted:
    embedding: Embedding
    quality: float

    @property
    def views(self) -> np.ndarray:
        """(K, D): views[0] is what is enrolled, all K are compared as a probe."""
        return self.embedding.views

    @property
    def template(self) -> np.ndarray:
        first: np.ndarray = self.embedding.views[0]
        return first

    @property
    def dense(self) -> np.ndarray | None:
        return self.embedding.dense


@dataclass(frozen=True)
class PipelineLimits:
    feature_extraction_timeout: float
    inference_timeout: float
    max_batch_size: int
    max_batch_wait_s: float
    workers: int
    compute_niceness: int = 0  # how far below the event loop the compute threads run


class InferencePipeline:
    def __init__(
        self, embedder: Embedder, admission: Admission, limits: PipelineLimits, observer: BatchObserver
    ) -> None:
        self.embedder = embedder
        self.admission = admission
        self._limits = limits
        self._observer = observer
        lower = lower_thread_priority(limits.compute_niceness)
        self._extract_pool = ThreadPoolExecutor(
            max_workers=limits.workers, thread_name_prefix="extract", initializer=lower)
        self.batcher: MicroBatcher[PreparedImage, Embedding] = MicroBatcher(
            embedder.embed, limits.max_batch_size, limits.max_batch_wait_s, observer, thread_initializer=lower
        )

    def start(self) -> None:
        self.batcher.start()

    async def stop(self) -> None:
        self.admission.close()
        await self.batcher.stop()
        self._extract_pool.shutdown(wait=True)

    async def extract(self, data: bytes, dpi: float, deadline: Deadline, min_quality: float | None = None) -> Extracted:
        try:
            slot = self.admission.slot()
        except QueueFull:
            self._observer.dropped("queue_full")
            raise
        with slot:
            prepared = await self._prepare(data, dpi, deadline)
            if min_quality is not None and prepared.quality < min_quality:
                raise LowQuality(prepared.quality, min_quality)
            embedding = await self.batcher.submit(prepared, deadline, self._limits.inference_timeout)
            return Extracted(embedding=embedding, quality=prepared.quality)

    async def _prepare(self, data: bytes, dpi: float, deadline: Deadline) -> PreparedImage:
        budget, binding = deadline.budget(self._limits.feature_extraction_timeout)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._extract_pool, self.embedder.preprocess, data, dpi)
        try:
            return await asyncio.wait_for(work, timeout=budget)
        except TimeoutError:
            stage = "feature_extraction_timeout" if binding == "stage" else "request_timeout"
            self._observer.dropped("deadline_feature_extraction" if binding == "stage" else "deadline_request")
            raise StageTimeout(stage) from None
