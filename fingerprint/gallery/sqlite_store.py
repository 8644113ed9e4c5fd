"""The embedded default gallery: one SQLite file in WAL mode, synchronous=FULL.

With WAL and synchronous=FULL a commit is on disk before `add` returns, so an enroll answered 201
survives kill -9 and power loss. SQLite calls run in one worker thread: the connection is not shared
between threads and the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.gallery.sqlite_schema import create_or_upgrade, template_meta
from fingerprint.gallery.store import (
    IDEMPOTENCY_TTL_SECONDS,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    KeptImage,
    StoredRow,
    StoreFull,
    StoreUnavailable,
    SubjectSummary,
    Template,
    TemplateErasure,
    TemplateMeta,
)

T = TypeVar("T")
# Space set aside beside the database and given back when an erasure finds the disk full: the right
# to erasure must not depend on free space. Below _LOW_SPACE free the store reports itself full.
_RESERVE_BYTES = 8 * 1024 * 1024
_LOW_SPACE = 4 * 1024 * 1024

class SqliteStore:
    replicated = False

    def __init__(self, path: Path, codec: EmbeddingCodec | None = None) -> None:
        self._path = path
        self.codec = codec or EmbeddingCodec()  # its own: `refused` counts this store's rows
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise StoreUnavailable("the gallery store is not open")
            try:
                return fn(self._conn)
            except sqlite3.OperationalError as exc:
                if "full" in str(exc):
                    raise StoreFull("the gallery disk is full") from exc
                raise StoreUnavailable(str(exc)) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")  # erasing a template forgets its idempotency key
            create_or_upgrade(conn)
            self._conn = conn
            self._keep_reserve()

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    async def add(self, template: Template, claim: IdempotencyClaim | None = None, image: KeptImage | None = None) -> int:
        await self._insert(template, claim, image=image)
        return 0

    async def add_if_absent(self, template: Template, image: KeptImage | None = None) -> bool:
        return await self._insert(template, None, if_absent=True, image=image)

    async def add_derived(self, template: Template, source_id: str, image: KeptImage) -> bool:
        return await self._insert(template, None, if_absent=True, image=image, source_id=source_id)

    async def _insert(self, template: Template, claim: IdempotencyClaim | None, if_absent: bool = False,
                      image: KeptImage | None = None, source_id: str | None = None) -> bool:
        m = template.meta
        sealed_image = None if image is None else self.codec.seal_image(m.template_id, image.data)

        def insert(conn: sqlite3.Connection) -> bool:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                if source_id is not None and conn.execute("SELECT 1 FROM templates WHERE template_id = ?",
                                                          (source_id,)).fetchone() is None:
                    return False  # erased while it was being rebuilt
                cur = conn.execute(
                    f"INSERT {'OR IGNORE ' if if_absent else ''}INTO templates (template_id, subject_id, finger, "
                    "model_version, quality, created_at, embedding, nfiq2, source_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (m.template_id, m.subject_id, m.finger, m.model_version, m.quality,
                     m.created_at.astimezone(UTC).isoformat(),
                     self.codec.encode(m.template_id, template.embedding, template.dense, template.minutiae), m.nfiq2,
                     source_id or m.source_id),
                )
                if sealed_image is not None and cur.rowcount == 1:
                    conn.execute("INSERT INTO enrollment_images VALUES (?, ?, ?)",
                                 (m.template_id, image.dpi if image else None, sealed_image))
                if claim is not None:
                    now = time.time()
                    conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - IDEMPOTENCY_TTL_SECONDS,))
                    try:
                        conn.execute("INSERT INTO idempotency_keys VALUES (?, ?, ?, ?)",
                                     (claim.key_hash, claim.request_hash, m.template_id, now))
                    except sqlite3.IntegrityError:
                        raise IdempotencyKeyTaken() from None  # the transaction rolls back: no template either
            return cur.rowcount == 1

        return await self._run(insert)

    async def _keyset(self, select: str, params: tuple[object, ...], page_size: int) -> AsyncIterator[sqlite3.Row]:
        """Rows of `select` (templates `t`, filtered by `params`) a page at a time in template-id order: the
        single store thread is never held for a whole gallery."""
        after = ""
        while True:
            def page(conn: sqlite3.Connection, after: str = after) -> list[sqlite3.Row]:
                return conn.execute(f"{select} AND t.template_id > ? ORDER BY t.template_id LIMIT {page_size}",
                                    (*params, after)).fetchall()

            rows = await self._run(page)
            if not rows:
                return
            for r in rows:
                yield r
            after = rows[-1]["template_id"]

    async def kept_images(self) -> AsyncIterator[tuple[TemplateMeta, KeptImage]]:
        async for r in self._keyset("SELECT t.*, i.dpi AS image_dpi, i.image FROM templates t "
                                    "JOIN enrollment_images i USING (template_id) WHERE 1", (), 100):
            yield template_meta(r), KeptImage(self.codec.open_image(r["template_id"], r["image"]), r["image_dpi"])

    async def iter_rows(self) -> AsyncIterator[StoredRow]:
        async for r in self._keyset("SELECT t.*, i.image, i.dpi AS image_dpi FROM templates t "
                                    "LEFT JOIN enrollment_images i USING (template_id) WHERE 1", (), 1000):
            yield StoredRow(template_meta(r), bytes(r["embedding"]), r["image"], r["image_dpi"])

    async def claimed(self, key_hash: str) -> tuple[str, TemplateMeta] | None:
        def select(conn: sqlite3.Connection) -> tuple[str, TemplateMeta] | None:
            row = conn.execute(
                "SELECT k.request_hash, t.template_id, t.subject_id, t.finger, t.model_version, t.quality, t.created_at, "
                "t.nfiq2, t.source_id "
                "FROM idempotency_keys k JOIN templates t USING (template_id) WHERE k.key_hash = ? AND k.created_at >= ?",
                (key_hash, time.time() - IDEMPOTENCY_TTL_SECONDS)).fetchone()
            return None if row is None else (row["request_hash"], template_meta(row))

        return await self._run(select)

    @property
    def _reserve(self) -> Path:
        return self._path.with_suffix(".reserve")

    def _keep_reserve(self) -> None:
        if self._reserve.exists() or shutil.disk_usage(self._path.parent).free < 4 * _RESERVE_BYTES:
            return
        with contextlib.suppress(OSError), open(self._reserve, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, _RESERVE_BYTES)

    async def erase(self, subject_id: str) -> tuple[list[str], int]:
        try:
            return await self._delete(subject_id), 0
        except StoreFull:
            self._reserve.unlink(missing_ok=True)  # give the reserve back, once, to this erasure
            return await self._delete(subject_id), 0

    async def _delete(self, subject_id: str) -> list[str]:
        def delete(conn: sqlite3.Connection) -> list[str]:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                ids = [r[0] for r in conn.execute("SELECT template_id FROM templates WHERE subject_id = ?", (subject_id,))]
                conn.execute("DELETE FROM templates WHERE subject_id = ?", (subject_id,))
            return ids

        return await self._run(delete)

    async def erase_template(self, template_id: str) -> TemplateErasure:
        def delete(conn: sqlite3.Connection) -> TemplateErasure:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                # what was rebuilt from it for another model version goes with it
                rows = conn.execute("DELETE FROM templates WHERE template_id = ? OR source_id = ? "
                                    "RETURNING subject_id, template_id", (template_id, template_id)).fetchall()
            return TemplateErasure(str(rows[0][0]) if rows else None, 0, tuple(str(r[1]) for r in rows))

        try:
            return await self._run(delete)
        except StoreFull:
            self._reserve.unlink(missing_ok=True)
            return await self._run(delete)

    async def template(self, template_id: str) -> Template | None:
        row = await self._run(lambda conn: conn.execute("SELECT * FROM templates WHERE template_id = ?",
                                                        (template_id,)).fetchone())
        decoded = None if row is None else self.codec.open_row(row["template_id"], row["embedding"])
        return None if decoded is None else Template(template_meta(row), *decoded)

    async def subject_templates(self, subject_id: str) -> list[TemplateMeta]:
        def select(conn: sqlite3.Connection) -> list[TemplateMeta]:
            rows = conn.execute(
                "SELECT template_id, subject_id, finger, model_version, quality, created_at, nfiq2, source_id FROM templates "
                "WHERE subject_id = ? ORDER BY created_at, template_id",
                (subject_id,),
            )
            return [template_meta(r) for r in rows]

        return await self._run(select)

    async def subjects(self, limit: int, after: str | None) -> list[SubjectSummary]:
        def select(conn: sqlite3.Connection) -> list[SubjectSummary]:
            rows = conn.execute(
                "SELECT subject_id, COUNT(*) AS n, GROUP_CONCAT(DISTINCT finger) AS fingers, MIN(created_at) AS first, "
                "MAX(created_at) AS last FROM templates WHERE subject_id > ? GROUP BY subject_id "
                "ORDER BY subject_id LIMIT ?", (after or "", limit))
            return [SubjectSummary(r["subject_id"], r["n"], tuple(sorted((r["fingers"] or "").split(",") if r["fingers"]
                                                                          else ())),
                                   datetime.fromisoformat(r["first"]), datetime.fromisoformat(r["last"])) for r in rows]

        return await self._run(select)

    async def load(self, versions: tuple[str, ...], add: Callable[[Template], None]) -> int:
        async for t in self.iter_templates(versions):
            add(t)
        return 0

    def follower(self, index: object, versions: tuple[str, ...], seq: int, interval: float) -> None:
        return None  # one process owns the file: nobody else writes

    async def iter_templates(self, versions: tuple[str, ...]) -> AsyncIterator[Template]:
        marks = ",".join("?" * len(versions))
        async for r in self._keyset(f"SELECT * FROM templates t WHERE t.model_version IN ({marks})", versions, 5000):
            decoded = self.codec.open_row(r["template_id"], r["embedding"])
            if decoded is not None:
                yield Template(template_meta(r), *decoded)

    async def count_by_version(self) -> dict[str, int]:
        def count(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT model_version, COUNT(*) FROM templates GROUP BY model_version")
            return {r[0]: r[1] for r in rows}

        return await self._run(count)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())
        if shutil.disk_usage(self._path.parent).free < _LOW_SPACE:
            raise StoreFull("the gallery disk is full")
        self._keep_reserve()

    async def rotate(self) -> int:
        """Re-seal every template not under the active key; the count re-sealed."""

        def rotate_all(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT template_id, embedding FROM templates").fetchall()
            stale = [(r[0], r[1]) for r in rows if self.codec.needs_rotation(r[1])]
            images = [(r[0], r[1]) for r in conn.execute("SELECT template_id, image FROM enrollment_images")
                      if self.codec.needs_rotation(r[1])]
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for tid, blob in stale:
                    conn.execute("UPDATE templates SET embedding = ? WHERE template_id = ?",
                                 (self.codec.reseal(tid, blob), tid))
                for tid, blob in images:
                    conn.execute("UPDATE enrollment_images SET image = ? WHERE template_id = ?",
                                 (self.codec.reseal_image(tid, blob), tid))
            return len(stale)

        return await self._run(rotate_all)
