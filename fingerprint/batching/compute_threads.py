"""How each compute thread starts: below the event loop's priority, with its own number of torch threads.

Under overload the preprocessing and inference threads keep every core busy. If they ran at the
event loop's priority, a request that should be refused in a millisecond would wait for a time slice
behind them, and refusals would get as slow as the work they protect. Linux lets a thread lower its
own priority (raise its nice value) without privileges; the threads torch starts for a forward pass
inherit it from the thread that first runs one.

Torch keeps one process-wide intra-op thread count, which a thread copies on its first torch call. The
search thread asks for one; every extraction thread started after it then ran LEADER on one thread too
(~1,000 instead of ~470 ms, so sequential identify p50 doubled once a second extraction thread was
started). Each compute thread therefore sets its own count, after that first copy.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

import torch


def lower_thread_priority(niceness: int) -> Callable[[], None]:
    """An initializer for a ThreadPoolExecutor: each of its threads runs `niceness` steps below normal."""

    def apply() -> None:
        # setpriority on a thread id is Linux only: elsewhere the id would name a process
        if niceness <= 0 or sys.platform != "linux":
            return
        tid = threading.get_native_id()
        with contextlib.suppress(OSError):  # a sandbox may forbid it; work continues at normal priority
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)

    return apply


def compute_thread(niceness: int, torch_threads: int) -> Callable[[], None]:
    """An initializer for a compute thread: `niceness` steps below normal, `torch_threads` intra-op threads."""
    lower = lower_thread_priority(niceness)

    def apply() -> None:
        lower()
        torch.get_num_threads()  # the thread's first torch call: it copies the process-wide count now...
        torch.set_num_threads(torch_threads)  # ...so that this one, this thread's own, is not overwritten later

    return apply


class CoreShare:
    """The cores split among the extractions running at once. A LEADER pass alone gets every intra-op thread
    (its latency); several each get their share, so three LEADER passes on two cores do not run six OpenMP
    threads that spin against each other (three at once all overran a deadline that fits one, twice over).
    Lighter work claims one thread (`most`), and every claim leaves its thread with one: an OpenMP team's
    worker spins after each parallel region, and the spinning of five of them (the extraction threads after a
    claim of two, the inference thread) cost a saturated server ~10 ms of CPU an identify."""

    def __init__(self, threads: int) -> None:
        self._threads = max(1, threads)
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        """Claims held now."""
        return self._running

    @contextlib.contextmanager
    def claim(self, most: int | None = None) -> Iterator[None]:
        """Around one extraction, on its compute thread: sets that thread's torch thread count to its share
        of the cores (at most `most`), and back to one after."""
        with self._lock:
            self._running += 1
            share = max(1, min(most or self._threads, self._threads // self._running))
        torch.set_num_threads(share)
        try:
            yield
        finally:
            torch.set_num_threads(1)
            with self._lock:
                self._running -= 1
