"""Compute threads run below the event loop's priority, so refusing work stays cheap under load, each
with the torch thread count it was given, whatever other threads asked for."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from fingerprint.batching.compute_threads import CoreShare, compute_thread, lower_thread_priority


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


def test_each_compute_thread_keeps_its_own_torch_thread_count() -> None:
    """Torch threads copy the process-wide count on their first torch call: the search thread asking for one
    left the extraction threads started after it with one (LEADER ran twice as slow). A compute thread's
    count stays its own whatever another thread sets later, before or after its first torch work."""
    own = torch.get_num_threads()
    pools = {n: ThreadPoolExecutor(max_workers=1, initializer=compute_thread(0, n)) for n in (2, 3)}
    try:
        for pool in pools.values():
            pool.submit(lambda: None).result()  # started, no torch work yet
        torch.set_num_threads(1)  # what the search thread's start does to the process-wide count
        assert {n: pool.submit(torch.get_num_threads).result() for n, pool in pools.items()} == {2: 2, 3: 3}
    finally:
        torch.set_num_threads(own)
        for pool in pools.values():
            pool.shutdown()


def test_extractions_running_at_once_share_the_cores() -> None:
    """Alone, an extraction gets every torch thread; beside others, its share (never below one)."""
    share = CoreShare(4)
    inside = threading.Barrier(3)
    leave = threading.Event()

    def extraction() -> int:
        with share.claim():
            inside.wait(10)
            seen = torch.get_num_threads()
            leave.wait(10)
            return seen

    def alone() -> int:
        with share.claim():
            return torch.get_num_threads()

    with ThreadPoolExecutor(max_workers=3, initializer=compute_thread(0, 4)) as pool:
        assert pool.submit(alone).result() == 4
        running = [pool.submit(extraction) for _ in range(3)]
        leave.set()
        assert sorted(f.result() for f in running) == [1, 2, 4]  # claimed one after another: 4 // 1, 4 // 2, 4 // 3
        assert pool.submit(alone).result() == 4


def test_light_work_claims_one_thread_and_every_claim_leaves_one() -> None:
    """Only a LEADER pass takes more than one torch thread; after any claim the thread is back on one, so
    unclaimed work there (a probe's cylinders) does not keep a team whose worker spins."""
    share = CoreShare(4)

    def light_then_after() -> tuple[int, int, int]:
        with share.claim(1):
            light = torch.get_num_threads()
        with share.claim():
            heavy = torch.get_num_threads()
        return light, heavy, torch.get_num_threads()

    with ThreadPoolExecutor(max_workers=1, initializer=compute_thread(0, 1)) as pool:
        assert pool.submit(light_then_after).result() == (1, 4, 1)
