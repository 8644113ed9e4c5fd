"""Work the service runs beside requests: one asyncio task from `start` until `stop`, and, for work that
competes with requests for a core, a pause after each step in proportion to what the step took."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import structlog

from fingerprint.batching.compute_threads import compute_thread

log = structlog.get_logger("fingerprint.gallery.background")

T = TypeVar("T")

# the most of one core paced background work may take: a restarted replica's catch-up (a 10,000-template
# gallery's impostor scores and sketches) once took a core and the GIL from serving when unthrottled
# (identify throughput fell ~5x in the load benchmark)
BUSY_SHARE = 0.25
# the lowest priority Linux gives (it clamps to 19): while requests keep the cores busy, paced work gets
# what they leave. At normal priority it outranked the compute threads (nice COMPUTE_NICENESS), and a
# replica catching up on its gallery's impostor scores took ~8 % of the CPU from a saturated identify
BACKGROUND_NICENESS = 19


async def cancel_and_wait(task: asyncio.Task[T]) -> None:
    """Cancel `task` and wait until it has ended. One cancel is not enough on Python 3.11: a task inside
    `asyncio.wait_for` whose inner call completes as the cancel lands swallows it and runs on (CPython
    gh-86296), and a periodic loop then never ends; so the cancel is repeated until the task is done."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    if not task.cancelled() and (failure := task.exception()) is not None:
        # stopping goes on: the service's other parts still have to stop
        log.error("background task failed", task=task.get_name(), error=repr(failure))


class BackgroundTask(ABC):
    name = "background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    @abstractmethod
    async def run(self) -> None:
        """The work, from `start` until it returns or `stop` cancels it."""


class PacedTask(BackgroundTask):
    def __init__(self, busy_share: float = BUSY_SHARE, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """`busy_share`: the most of one core the work may take; it pauses in proportion to what it did."""
        if not 0 < busy_share <= 1:
            raise ValueError("busy_share must be in (0, 1]")
        super().__init__()
        self._busy_share = busy_share
        self._sleep = sleep
        self._thread: ThreadPoolExecutor | None = None

    async def in_background(self, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` on this task's own thread, at BACKGROUND_NICENESS, one torch thread."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=self.name,
                                              initializer=compute_thread(BACKGROUND_NICENESS, 1))
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    async def stop(self) -> None:
        await super().stop()
        if self._thread is not None:
            self._thread.shutdown(wait=False)  # a step under way finishes on its own; stopping does not wait for it
            self._thread = None

    async def rest(self, started: float) -> None:
        """The pause after a step that began at `started` (time.perf_counter), none at a busy share of 1."""
        if self._busy_share < 1:
            await self._sleep((time.perf_counter() - started) * (1 / self._busy_share - 1))
