"""Keep the memory a training step frees, so the next step does not fault it in again.

glibc's malloc hands an allocation above its mmap threshold (adaptive, capped at 32 MB) a fresh mapping and
unmaps it on free. A training step's largest activations (64 x 48 x 80 x 80 floats, 79 MB) are above any
threshold it adapts to, so in about half of the training processes measured every step faulted them in again
page by page: 66,000-85,000 minor faults a second and 0.73-0.84 s per step against 0.65-0.68 s without
(docs/experiments.md). Raising both thresholds keeps freed blocks on the heap.
It changes where memory comes from, not any arithmetic; the process's peak memory is still its largest step's.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_LIMIT = 2**31 - 1  # mallopt takes a C int: 2 GB, far above any one activation


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of any size up to 2 GB for reuse; False where there is no glibc
    (the call is then a no-op). Process-wide: for the training command, not a library or the server."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, _LIMIT))
