"""Compute threads run below the event loop's priority, so refusing work stays cheap under load."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from fingerprint.batching.priority import lower_thread_priority


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are a Linux feature")
def test_pool_threads_run_at_lower_priority_and_the_caller_does_not() -> None:
    before = _own_niceness()
    with ThreadPoolExecutor(max_workers=1, initializer=lower_thread_priority(5)) as pool:
        inside = pool.submit(_own_niceness).result()
    assert inside == min(before + 5, 19)
    assert _own_niceness() == before


def test_zero_niceness_changes_nothing() -> None:
    with ThreadPoolExecutor(max_workers=1, initializer=lower_thread_priority(0)) as pool:
        inside = pool.submit(_own_niceness).result()
    assert inside == _own_niceness()
