"""The inference pipeline a request goes through: admission, feature extraction, batched inference, search."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from fingerprint.batching.admission import Admission
from fingerprint.batching.batcher import BatchObserver, MicroBatcher
from fingerprint.batching.compute_threads import CoreShare, compute_thread
from fingerprint.batching.deadline import Deadline, StageTimeout
from fingerprint.model.comparator import MinutiaeProbe
from fingerprint.model.embedder import Embedder, Embedding, LeaderSource, PreparedImage
from fingerprint.model.minutiae.match import one_blas_thread
from fingerprint.model.minutiae.template import MinutiaeTemplate

T = TypeVar("T")


class LowQuality(Exception):
    def __init__(self, quality: float, minimum: float, measure: str = "image quality") -> None:
        super().__init__(f"{measure} {quality:.4g} is below the minimum {minimum:.4g}")
        self.quality = quality
        self.minimum = minimum


ProbeBuilder = Callable[[MinutiaeTemplate], MinutiaeProbe]


@dataclass(frozen=True)
class Extracted:
    embedding: Embedding
    quality: float
    probe: MinutiaeProbe | None = None  # the minutiae's cylinders, built beside inference for verify and identify
    leader_source: LeaderSource | None = None  # a fast probe's print: LEADER may find its minutiae after all

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

    @property
    def minutiae(self) -> MinutiaeTemplate | None:
        return self.embedding.minutiae

    @property
    def comparable_minutiae(self) -> MinutiaeProbe | MinutiaeTemplate | None:
        """What the gallery compares minutiae with: the built probe when there is one."""
        return self.probe if self.probe is not None else self.embedding.minutiae


@dataclass(frozen=True)
class PipelineLimits:
    feature_extraction_timeout: float
    inference_timeout: float
    max_batch_size: int
    max_batch_wait_s: float
    workers: int
    compute_niceness: int = 0  # how far below the event loop the compute threads run
    torch_threads: int = 1  # intra-op threads a LEADER pass may take (every other stage computes on one)


class InferencePipeline:
    def __init__(
        self, embedder: Embedder, admission: Admission, limits: PipelineLimits, observer: BatchObserver,
        probe_builder: ProbeBuilder | None = None,
    ) -> None:
        """`probe_builder` (the model's minutiae matcher's `probe`): a probe's minutiae cylinders are built on
        an extraction thread while the batch it is in runs, not on the one search thread every verify
        and identify queues for (three builds, ~6-7 ms, of an identify's ~30 ms there)."""
        self.embedder = embedder
        self._probe_builder = probe_builder
        self.admission = admission
        self._limits = limits
        self._observer = observer
        one_blas_thread()
        # one torch thread each, a LEADER pass excepted (`CoreShare`): more only pays for LEADER's large maps
        # (113 vs 200 ms a window); a fast probe's extraction and the batch's forward pass were as fast on one
        # (one client 83 -> 77 ms) and their OpenMP workers' spinning cost the saturated server 16.7 -> 19.0 /s
        compute = compute_thread(limits.compute_niceness, 1)
        self._cores = CoreShare(limits.torch_threads)
        self._extract_pool = ThreadPoolExecutor(
            max_workers=limits.workers, thread_name_prefix="extract", initializer=compute)
        # a print waits for company only while another is being prepared (a lone identify: 5 ms less)
        self.batcher: MicroBatcher[PreparedImage, Embedding] = MicroBatcher(
            embedder.embed, limits.max_batch_size, limits.max_batch_wait_s, observer, thread_initializer=compute,
            expecting=lambda: self._cores.running > 0)
        # gallery search and grid scoring: one thread with one torch thread, never a share of the cores: its
        # products are small since the int8 sketch and grid ranking, and a second OpenMP thread's spinning
        # cost a saturated server ~10 ms CPU an identify (17.1 -> 19.4 identify/s, one client 77 -> 73 ms)
        self._search_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="search", initializer=compute_thread(limits.compute_niceness, 1))

    def start(self) -> None:
        self.batcher.start()

    async def stop(self) -> None:
        self.admission.close()
        await self.batcher.stop()
        self._extract_pool.shutdown(wait=True)
        self._search_pool.shutdown(wait=True)

    async def extract(self, data: bytes, dpi: float | None, deadline: Deadline, min_quality: float | None = None) -> Extracted:
        with self._admit():
            return await self._extract(data, dpi, deadline, min_quality)

    async def match(self, data: bytes, dpi: float | None, deadline: Deadline, search: Callable[[Extracted], T],
                    settled: Callable[[T], bool] = lambda _: True) -> T:
        """Extract, then run `search` (gallery scoring) on the search thread, all inside one admission
        slot: the queue bound covers the whole request, so overload is refused at the door instead of
        piling up behind a busy search thread. The search gets what is left of the request deadline.
        A fast probe's result that is not `settled` is searched again once, on minutiae LEADER finds."""
        with self._admit():
            extracted = await self._extract(data, dpi, deadline, None, build_probe=True)
            result = await self._search_within(search, extracted, deadline)
            if extracted.leader_source is None or extracted.minutiae is None or settled(result):
                return result
            refined = await self._refine(extracted, extracted.minutiae, extracted.leader_source, deadline)
            return await self._search_within(search, refined, deadline)

    async def _search_within(self, search: Callable[[Extracted], T], extracted: Extracted, deadline: Deadline) -> T:
        work = asyncio.get_running_loop().run_in_executor(self._search_pool, search, extracted)
        return await self.within(work, deadline)

    async def _refine(self, extracted: Extracted, minutiae: MinutiaeTemplate, source: LeaderSource,
                      deadline: Deadline) -> Extracted:
        """`extracted` with LEADER's minutiae (and their cylinders) in place of the distilled network's: a
        feature extraction stage, with its deadline."""
        refined = await self._in_extraction_stage(self._refined_minutiae, deadline, minutiae, source)
        embedding = replace(extracted.embedding, minutiae=refined[0])
        return Extracted(embedding=embedding, quality=extracted.quality, probe=refined[1])

    def _refined_minutiae(self, minutiae: MinutiaeTemplate,
                          source: LeaderSource) -> tuple[MinutiaeTemplate, MinutiaeProbe | None]:
        with self._cores.claim():
            found = self.embedder.refine(minutiae, source)
            return found, None if self._probe_builder is None else self._probe_builder(found)

    async def within(self, work: Awaitable[T], deadline: Deadline) -> T:
        """`work`'s result if it comes before the request deadline, else StageTimeout('request_timeout'),
        counted as a request dropped at its deadline like every other stage's."""
        try:
            return await asyncio.wait_for(work, timeout=deadline.remaining())
        except TimeoutError:
            self._observer.dropped("deadline_request")
            raise StageTimeout("request_timeout") from None

    def _admit(self) -> AbstractContextManager[object]:
        return self.admission.slot()

    async def _extract(self, data: bytes, dpi: float | None, deadline: Deadline, min_quality: float | None,
                       build_probe: bool = False) -> Extracted:
        prepared = await self._prepare(data, dpi, deadline, probe=build_probe)
        if min_quality is not None and prepared.quality < min_quality:
            raise LowQuality(prepared.quality, min_quality)
        building = None
        if build_probe and self._probe_builder is not None and prepared.minutiae is not None:
            building = asyncio.get_running_loop().run_in_executor(self._extract_pool, self._probe_builder,
                                                                  prepared.minutiae)
        embedding = await self.batcher.submit(prepared, deadline, self._limits.inference_timeout)
        probe = None
        if building is not None:
            probe = await self.within(building, deadline)
        return Extracted(embedding=embedding, quality=prepared.quality, probe=probe, leader_source=prepared.leader_source)

    def _preprocess(self, data: bytes, dpi: float | None, probe: bool) -> PreparedImage:
        runs_leader = not (probe and self.embedder.distinct_probe_minutiae)
        with self._cores.claim(None if runs_leader else 1):
            return self.embedder.preprocess(data, dpi, probe)

    async def _prepare(self, data: bytes, dpi: float | None, deadline: Deadline, probe: bool) -> PreparedImage:
        return await self._in_extraction_stage(self._preprocess, deadline, data, dpi, probe)

    async def _in_extraction_stage(self, work_fn: Callable[..., T], deadline: Deadline, *args: object) -> T:
        """`work_fn(*args)` on an extraction thread, within the feature extraction stage's deadline."""
        budget, binding = deadline.budget(self._limits.feature_extraction_timeout)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._extract_pool, work_fn, *args)
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(work, timeout=budget)
        except TimeoutError:
            stage = "feature_extraction_timeout" if binding == "stage" else "request_timeout"
            self._observer.dropped("deadline_feature_extraction" if binding == "stage" else "deadline_request")
            raise StageTimeout(stage) from None
        finally:
            self.admission.observe_stage(time.perf_counter() - started)
