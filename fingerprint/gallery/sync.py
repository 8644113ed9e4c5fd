"""Keeps one replica's in-memory index in step with the shared store's change log.

Two triggers, one mechanism: a LISTEN connection wakes the replica within milliseconds of a commit,
and a poll every `interval` seconds catches whatever a dropped connection or a missed notification
hid. Both apply the log strictly by sequence, so the index converges to the database within
`interval` (plus one query) whatever happens to notifications.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from fingerprint.gallery.background import cancel_and_wait
from fingerprint.gallery.index import GalleryIndex
from fingerprint.gallery.store import Change, StoreUnavailable

log = structlog.get_logger("fingerprint.gallery.sync")
_PAGE = 5000  # changes read per query while catching up


class ChangeLog(Protocol):
    async def changes_since(self, seq: int, versions: tuple[str, ...], limit: int = 5000) -> list[Change]: ...

    def listen(self) -> object: ...


class GallerySync:
    def __init__(self, store: ChangeLog, index: GalleryIndex, versions: tuple[str, ...], last_seq: int,
                 interval: float = 1.0) -> None:
        self._store = store
        self._index = index
        self._versions = versions
        self.last_seq = last_seq
        self._interval = interval
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll(), name="gallery-poll"),
                       asyncio.create_task(self._listen(), name="gallery-listen")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await cancel_and_wait(task)

    def _apply(self, change: Change) -> None:
        if change.op == "erase":
            self._index.remove_subject(change.subject_id)
        elif change.op == "remove":
            if change.template_id is not None:
                self._index.remove_template(change.template_id)
        elif change.template is not None:
            self._index.add_template(change.template)
        self.last_seq = change.seq

    async def catch_up(self) -> None:
        async with self._lock:
            while True:
                changes = await self._store.changes_since(self.last_seq, self._versions, _PAGE)
                for change in changes:
                    self._apply(change)
                if len(changes) < _PAGE:
                    return

    async def wait_until(self, seq: int) -> None:
        """Return once this replica's index reflects change `seq` (read-your-writes after a local write)."""
        while self.last_seq < seq:
            await self.catch_up()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.catch_up()
            except StoreUnavailable:
                pass  # readiness reports it; the next tick retries
            except Exception as exc:  # a bug must not silently stop this replica following the log
                log.error("gallery catch-up failed; retrying", **{"error.type": type(exc).__name__}, exc_info=exc)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async for _ in self._store.listen():  # type: ignore[attr-defined]
                    backoff = 0.5
                    await self.catch_up()
            except StoreUnavailable:
                log.warning("gallery notifications lost; polling until the database is back")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
