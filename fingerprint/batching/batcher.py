"""Micro-batching: requests that arrive together share one forward pass.

Semantics follow Triton's dynamic batcher: a batch is dispatched as soon as it is full; a partial
batch waits at most `max_wait` for company, and not at all when none is on its way (`expecting`).
Work whose caller has gone (timed out, disconnected) or
whose deadline has passed is dropped before it costs a forward pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from fingerprint.batching.deadline import Deadline, StageTimeout

T = TypeVar("T")
R = TypeVar("R")


class BatchObserver(Protocol):
    def batch_done(self, size: int, seconds: float) -> None: ...
    def queue_wait(self, seconds: float) -> None: ...
    def dropped(self, reason: str) -> None: ...


class _NullObserver:
    def batch_done(self, size: int, seconds: float) -> None:
        pass

    def queue_wait(self, seconds: float) -> None:
        pass

    def dropped(self, reason: str) -> None:
        pass


@dataclass
class _Job(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    deadline: Deadline
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        max_batch_size: int,
        max_wait_s: float,
        observer: BatchObserver | None = None,
        thread_initializer: Callable[[], None] | None = None,
        expecting: Callable[[], bool] | None = None,
    ) -> None:
        """`expecting`: whether more items may come soon (the pipeline: another print is being prepared); a
        lone item is sent at once when none can, instead of waiting `max_wait_s` for nothing."""
        self._run_batch = run_batch
        self._expecting = expecting
        self._max_batch = max_batch_size
        self._max_wait = max_wait_s
        self._observer = observer or _NullObserver()
        self._pending: deque[_Job[T, R]] = deque()
        self._wakeup = asyncio.Event()
        # one thread owns the model: torch parallelises inside a forward pass, not across them
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="inference", initializer=thread_initializer)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, item: T, deadline: Deadline, stage_timeout: float) -> R:
        """The item's embedding; StageTimeout('inference_timeout' or 'request_timeout') when late."""
        if self._stopping:
            raise RuntimeError("the batcher is stopped")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(item, future, deadline))
        self._wakeup.set()
        budget, binding = deadline.budget(stage_timeout)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=budget)
        except TimeoutError:
            future.cancel()
            self._observer.dropped("deadline_inference" if binding == "stage" else "deadline_request")
            raise StageTimeout("inference_timeout" if binding == "stage" else "request_timeout") from None
        except asyncio.CancelledError:
            future.cancel()  # the caller went away: let the loop skip this job
            raise

    def _company_may_come(self) -> bool:
        return self._expecting is None or self._expecting()

    def _take_batch(self) -> list[_Job[T, R]]:
        batch: list[_Job[T, R]] = []
        while self._pending and len(batch) < self._max_batch:
            job = self._pending.popleft()
            if job.future.done():
                continue  # its caller timed out or left and was counted there
            if job.deadline.expired:
                job.future.set_exception(StageTimeout("request_timeout"))
                self._observer.dropped("deadline_request")
                continue
            batch.append(job)
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._pending) < self._max_batch and not self._stopping and self._company_may_come():
                oldest = self._pending[0].enqueued
                wait = self._max_wait - (time.monotonic() - oldest)
                if wait > 0:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
                    if len(self._pending) < self._max_batch and time.monotonic() - oldest < self._max_wait:
                        continue
            batch = self._take_batch()
            if not batch:
                continue
            now = time.monotonic()
            for job in batch:
                self._observer.queue_wait(now - job.enqueued)
            started = time.perf_counter()
            try:
                result = await loop.run_in_executor(self._executor, self._run_batch, [j.item for j in batch])
            except Exception as exc:  # a failed forward pass fails its batch, not the service
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self._observer.batch_done(len(batch), time.perf_counter() - started)
            for job, row in zip(batch, result, strict=True):
                if not job.future.done():
                    job.future.set_result(row)
