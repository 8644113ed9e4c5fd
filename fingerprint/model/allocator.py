"""Keep the memory a forward pass frees, so the next pass does not fault it in again.

glibc's malloc hands an allocation above its mmap threshold (adaptive, capped at 32 MB) a fresh mapping and
unmaps it on free. LEADER's activations on a print (52-208 channels at 208 x 208, up to 36 MB each) and a
training step's (79 MB) are above any threshold it adapts to, so every pass faulted them in again page by
page: LEADER on a 416 px window took 635-686 ms on two threads and 1,309 ms on one, against 364-483 and
812 ms with freed blocks kept (docs/experiments.md). Raising both thresholds keeps freed blocks on the heap.
It changes where memory comes from, not any arithmetic; a process's peak memory is still its largest pass's
(per thread arena: each extraction thread keeps what its largest print needed).
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_LIMIT = 2**31 - 1  # mallopt takes a C int: 2 GB, far above any one activation


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of any size up to 2 GB for reuse; False where there is no glibc
    (the call is then a no-op). Process-wide: called once by the commands that run the networks (serve,
    the CLI's local commands, the lab), never on import."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, _LIMIT))
