"""Building the index's minutiae sketches in the background once the gallery has loaded.

Identify ranks its minutiae shortlist on the candidates' sketches (model/minutiae/sketch.py) and
builds a missing one on first use, which costs what the full comparison it saves would have cost.
A gallery loaded at start has none: this builds them all, a chunk at a time, with at most
`busy_share` of one core, so that the first minutes of traffic are not the slow ones. It runs on its
task's one thread (`PacedTask.in_background`): with glibc keeping freed memory (model/allocator.py), each
thread that builds cylinders keeps its peak in its arena, and the shared default pool's many threads
would each keep one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from fingerprint.gallery.background import BUSY_SHARE, PacedTask

if TYPE_CHECKING:
    from fingerprint.gallery.index import GalleryIndex

log = structlog.get_logger("fingerprint.gallery")
CHUNK = 64  # rows a step: ~0.1-0.2 s of one core


class SketchWarmer(PacedTask):
    name = "sketch-warmer"

    def __init__(self, index: GalleryIndex, busy_share: float = BUSY_SHARE,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        super().__init__(busy_share, sleep)
        self._index = index

    async def run(self) -> None:
        """Until every row loaded so far was visited (later ones are built by identify on use)."""
        while True:
            started = time.perf_counter()
            try:
                visited = await self.in_background(self._index.warm_sketches, CHUNK)
            except Exception as exc:  # identify still builds what is missing
                log.warning("minutiae sketches not built", **{"error.type": type(exc).__name__})
                return
            if not visited:
                return
            await self.rest(started)
