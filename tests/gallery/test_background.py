import asyncio
import os
import sys
import threading

import pytest

from fingerprint.gallery.background import BACKGROUND_NICENESS, PacedTask, cancel_and_wait


class _Task(PacedTask):
    name = "test-background"

    async def run(self) -> None:
        await asyncio.sleep(3600)


def _where() -> tuple[str, int]:
    tid = threading.get_native_id()
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, tid)


@pytest.mark.skipif(sys.platform != "linux", reason="thread priorities are Linux only")
async def test_paced_work_runs_on_its_own_thread_at_the_lowest_priority() -> None:
    task = _Task()
    task.start()
    try:
        name, niceness = await task.in_background(_where)
        again, _ = await task.in_background(_where)
    finally:
        await task.stop()
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert name.startswith("test-background") and again == name  # one thread, reused
    assert niceness == min(19, here + BACKGROUND_NICENESS)  # below the compute threads' COMPUTE_NICENESS too
    assert task._thread is None  # stopping released it


class _Swallows(PacedTask):
    """A periodic loop like the store health check, whose one cancel is lost (as inside Python 3.11's
    `asyncio.wait_for` when the awaited call completes as the cancel lands)."""
    name = "test-swallows"

    def __init__(self) -> None:
        super().__init__()
        self.cancels = 0

    async def run(self) -> None:
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.cancels += 1
                if self.cancels > 1:
                    raise


async def test_stop_ends_a_task_that_lost_a_cancel() -> None:
    task = _Swallows()
    task.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(task.stop(), timeout=10)  # before: one cancel, then a wait that never ended
    assert task.cancels == 2


async def test_stop_ends_a_health_loop_whose_wait_for_swallows_the_cancel() -> None:
    async def ping() -> None:
        await asyncio.sleep(0)

    async def health() -> None:
        while True:
            await asyncio.wait_for(ping(), 1.0)

    for _ in range(20):  # the race is timing-dependent: cancel it at many points
        task = asyncio.create_task(health())
        await asyncio.sleep(0.001)
        await asyncio.wait_for(cancel_and_wait(task), timeout=10)
        assert task.done()
