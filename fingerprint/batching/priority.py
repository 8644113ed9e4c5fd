"""CPU priority of the compute threads, so the event loop can always refuse work at once.

Under overload the preprocessing and inference threads keep every core busy. If they ran at the
event loop's priority, a request that should be refused in a millisecond would wait for a time slice
behind them, and refusals would get as slow as the work they protect. Linux lets a thread lower its
own priority (raise its nice value) without privileges; the threads torch starts for a forward pass
inherit it from the thread that first runs one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable


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
