"""Identify's first stage from a vector engine, kept in step with the gallery.

The index stays the truth for which templates exist: the engine's answers are filtered by it, and a
template the engine does not have yet (just enrolled, or enrolled while it was down) is scored in
memory beside them, so a search never misses a template or finds an erased one whatever the engine's
lag. `EngineSync` writes what the engine lacks and deletes what the gallery no longer holds: search
vectors are biometric data, and an erasure must reach every copy. Every replica writes through
(upserts and deletes are idempotent); at start and every SWEEP_SECONDS it compares the engine's ids
with the index, and deletes those no replica's store holds any more (erased while this one was down).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import structlog

from fingerprint.gallery.background import BackgroundTask
from fingerprint.gallery.vector_engine import EngineUnavailable, VectorCollection

if TYPE_CHECKING:
    from fingerprint.gallery.index import GalleryIndex
    from fingerprint.gallery.store import GalleryStore

log = structlog.get_logger("fingerprint.gallery.engine")

# beyond this many templates the engine lacks, identify scans in memory (catching up after a restart)
MAX_UNWRITTEN = 20_000
# Milvus searches rows still in growing segments ~30x slower (milvus-lite, 100,000 rows: 2.1 s against 61 ms
# once flushed); it seals them itself in time, sooner after a bulk write, but a flush is costly (5 s there)
SEAL_AFTER_ROWS = 10_000
SEAL_AFTER_SECONDS = 600.0
SWEEP_SECONDS = 3600.0
_BATCH = 5000

EngineState = Literal["connecting", "catching_up", "synced", "unavailable"]


@dataclass(frozen=True)
class EngineStatus:
    name: str
    state: EngineState
    unwritten: int  # templates identify finds in memory because the engine lacks them yet
    unerased: int  # templates erased here whose delete has not reached the engine yet
    fallbacks: int  # searches scanned in memory because the engine failed to answer
    last_error: str


class EngineShortlist:
    """What the engine is asked, and what it still lacks or still holds; the index calls `added` and
    `removed` (under its lock) and `candidates` (outside it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.collection: VectorCollection | None = None
        self.state: EngineState = "connecting"
        self.last_error = ""
        self.fallbacks = 0  # searches answered by the in-memory scan because the engine could not be asked
        self.synced = False  # compared with the index once: every indexed template but the unwritten is in it
        self._unwritten: dict[str, None] = {}  # indexed, not (yet) in the engine
        self._unerased: dict[str, None] = {}  # gone from the index, maybe still in the engine
        self._lock = threading.Lock()

    def added(self, template_id: str) -> None:
        with self._lock:
            self._unerased.pop(template_id, None)
            self._unwritten[template_id] = None

    def removed(self, template_id: str) -> None:
        with self._lock:
            self._unwritten.pop(template_id, None)
            self._unerased[template_id] = None

    def unwritten(self) -> list[str]:
        with self._lock:
            return list(self._unwritten)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return len(self._unwritten), len(self._unerased)

    def candidates(self, probes: np.ndarray, limit: int) -> list[list[str]] | None:
        """The engine's nearest ids for each probe; None where the index must scan in memory instead."""
        collection = self.collection
        if collection is None or not self.synced or len(self._unwritten) > MAX_UNWRITTEN:
            return None
        try:
            found = collection.search(probes, limit)
        except EngineUnavailable as exc:
            self.fallbacks += 1
            self.failed(exc)
            return None
        self.answered()
        return found

    def status(self) -> EngineStatus:
        unwritten, unerased = self.counts()
        return EngineStatus(self.name, self.state, unwritten, unerased, self.fallbacks, self.last_error)

    def answered(self) -> None:
        """The engine just answered a call: reachable again, and as current as its lag says."""
        if self.synced:
            self.state = "catching_up" if len(self._unwritten) > MAX_UNWRITTEN else "synced"

    def failed(self, exc: Exception) -> None:
        if self.state != "unavailable":
            log.error("vector engine unavailable; identify scans in memory",
                      **{"error.type": type(exc).__name__, "error.message": str(exc)[:300]})
        self.state, self.last_error = "unavailable", str(exc)[:300]

    def _take(self, pending: dict[str, None], limit: int) -> list[str]:
        with self._lock:  # islice: catching up a million templates takes 200 batches, not 200 copies of all
            return list(itertools.islice(pending, limit))

    def _done(self, pending: dict[str, None], ids: list[str]) -> None:
        with self._lock:
            for i in ids:
                pending.pop(i, None)

    def take_unerased(self) -> list[str]:
        return self._take(self._unerased, _BATCH)

    def erased(self, ids: list[str]) -> None:
        self._done(self._unerased, ids)

    def take_unwritten(self) -> list[str]:
        return self._take(self._unwritten, _BATCH)

    def written(self, ids: list[str]) -> None:
        self._done(self._unwritten, ids)

    def mark_unwritten(self, ids: list[str]) -> None:
        with self._lock:
            for i in ids:
                self._unwritten[i] = None


class EngineSync(BackgroundTask):
    """Connects, compares, then writes the engine's lag every `interval` seconds."""

    name = "vector-engine-sync"

    def __init__(self, shortlist: EngineShortlist, connect: Callable[[], VectorCollection],
                 indexed: Callable[[], list[str]], vectors_of: Callable[[list[str]], tuple[list[str], np.ndarray]],
                 stored: Callable[[str], Awaitable[bool]], interval: float) -> None:
        """`indexed`: the index's template ids; `vectors_of`: the search vectors of those still indexed;
        `stored`: whether the gallery store still holds a template (any replica may have enrolled it)."""
        super().__init__()
        self._shortlist = shortlist
        self._connect = connect
        self._indexed = indexed
        self._vectors_of = vectors_of
        self._stored = stored
        self._interval = interval
        self._unsealed = 0  # rows written since the engine last sealed them
        self._sealed_at = time.monotonic()

    @classmethod
    def of(cls, index: GalleryIndex, connect: Callable[[], VectorCollection], store: GalleryStore,
           interval: float) -> EngineSync:
        assert index.engine is not None

        async def stored(template_id: str) -> bool:
            try:
                return await store.template(template_id) is not None
            except Exception:  # cannot tell (store down, a row it refuses): keep it, the next sweep decides
                return True

        return cls(index.engine, connect, index.template_ids, index.vectors_of, stored, interval)

    async def run(self) -> None:
        backoff = self._interval
        last_sweep = -SWEEP_SECONDS
        s = self._shortlist
        while True:
            try:
                await self.connect()
                if time.monotonic() - last_sweep >= SWEEP_SECONDS:
                    if not s.synced:
                        s.state = "catching_up"
                    await self.sweep()
                    last_sweep = time.monotonic()
                await self.write()
                backoff = self._interval
            except EngineUnavailable as exc:
                s.failed(exc)
                backoff = min(backoff * 2, 30.0)
            except Exception as exc:  # a bug or the store failing mid-sweep: logged, retried, never the end of sync
                log.error("vector engine sync failed", **{"error.type": type(exc).__name__, "error.message": str(exc)[:300]})
                backoff = min(backoff * 2, 30.0)
            await asyncio.sleep(backoff)

    async def connect(self) -> VectorCollection:
        if self._shortlist.collection is None:
            self._shortlist.collection = await asyncio.to_thread(self._connect)
        return self._shortlist.collection

    async def sweep(self) -> None:
        """Compare the engine with the index: mark what it lacks unwritten, delete what no store holds."""
        collection = await self.connect()
        in_engine: set[str] = set()
        pages = collection.all_ids()
        while (page := await asyncio.to_thread(next, pages, None)) is not None:
            in_engine.update(page)
        indexed = self._indexed()
        # a template id names one immutable template: what the engine holds under it needs no write
        self._shortlist.written([t for t in indexed if t in in_engine])
        self._shortlist.mark_unwritten([t for t in indexed if t not in in_engine])
        extra = in_engine.difference(indexed)
        gone = [t for t in extra if not await self._stored(t)]
        for start in range(0, len(gone), _BATCH):
            await asyncio.to_thread(collection.delete, gone[start : start + _BATCH])
        if gone:
            log.info("vector engine held erased templates; deleted", **{"fingerprint.engine.deleted": len(gone)})
        self._shortlist.synced = True
        self._shortlist.answered()

    async def write(self) -> None:
        """Delete what left the index, then write what the engine lacks (deletes first: a row both
        written and erased meanwhile is deleted again at the next pass, never left behind)."""
        s, collection = self._shortlist, await self.connect()
        called = False  # a pass with nothing to write proves nothing about the engine: its state stays
        while ids := s.take_unerased():
            await asyncio.to_thread(collection.delete, ids)
            s.erased(ids)
            called = True
        while ids := s.take_unwritten():
            present, vectors = self._vectors_of(ids)
            if present:
                await asyncio.to_thread(collection.upsert, present, vectors)
                self._unsealed += len(present)
                called = True
            s.written(ids)  # those no longer indexed were erased meanwhile: `removed` queued their delete
        if self._unsealed >= SEAL_AFTER_ROWS or (self._unsealed and time.monotonic() - self._sealed_at >= SEAL_AFTER_SECONDS):
            await asyncio.to_thread(collection.seal)
            self._unsealed, self._sealed_at = 0, time.monotonic()
        if called:
            s.answered()
