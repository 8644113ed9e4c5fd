"""What the service knows about its store, checked in the background so no request waits to find out.

Readiness reads this instead of pinging (a dead database must not make every replica's probe hang
and fail at once while identify still serves from memory), and writes consult it to fail at once
instead of after a pool timeout. A failed write marks the store down at once; the next check, within
`interval`, says whether it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import structlog

from fingerprint.gallery.background import BackgroundTask
from fingerprint.gallery.store import GalleryStore, StoreFull, StoreUnavailable

log = structlog.get_logger("fingerprint.gallery.health")
StoreState = Literal["ok", "unavailable", "disk_full"]
CENSUS_SECONDS = 15.0


class StoreHealth(BackgroundTask):
    name = "store-health"

    def __init__(self, store: GalleryStore, interval: float = 1.0, timeout: float = 2.0) -> None:
        super().__init__()
        self._store = store
        self._interval = interval
        self._timeout = timeout
        self.state: StoreState = "ok"
        # stored templates by model version, counted every CENSUS_SECONDS: readiness shows a `gallery
        # reindex` progressing (the new version's count growing) without a request waiting on the database
        self.templates_by_version: dict[str, int] | None = None

    @property
    def readiness(self) -> Literal["ready", "degraded"]:
        """Ready with a writable store; degraded while identify and verify serve from memory only."""
        return "ready" if self.state == "ok" else "degraded"

    def saw(self, exc: StoreUnavailable) -> None:
        """A request just failed on the store: believe it until the next check."""
        self._set("disk_full" if isinstance(exc, StoreFull) else "unavailable")

    def require_writable(self, erasing: bool = False) -> None:
        """Fail a write at once when the store is known down; an erasure still tries on a full disk
        (the store keeps space aside for it)."""
        if self.state == "unavailable":
            raise StoreUnavailable("the gallery store is unavailable")
        if self.state == "disk_full" and not erasing:
            raise StoreFull("the gallery disk is full")

    async def check(self) -> StoreState:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel (stop would wait forever)
            async with asyncio.timeout(self._timeout):
                await self._store.ping()
            self._set("ok")
        except StoreFull:
            self._set("disk_full")
        except (StoreUnavailable, TimeoutError):
            self._set("unavailable")
        return self.state

    def _set(self, state: StoreState) -> None:
        if state != self.state:
            (log.info if state == "ok" else log.error)("gallery store " + state.replace("_", " "),
                                                       **{"fingerprint.store.state": state})
        self.state = state

    async def census(self) -> dict[str, int] | None:
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            async with asyncio.timeout(self._timeout):
                self.templates_by_version = await self._store.count_by_version()
        return self.templates_by_version

    async def run(self) -> None:
        last_census = -CENSUS_SECONDS
        loop = asyncio.get_running_loop()
        while True:
            if await self.check() == "ok" and loop.time() - last_census >= CENSUS_SECONDS:
                last_census = loop.time()
                await self.census()
            await asyncio.sleep(self._interval)
