import asyncio
import os
import sys
import threading

import pytest

from fingerprint.gallery.background import BACKGROUND_NICENESS, PacedTask


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
