"""The shared gallery: PostgreSQL, for several replicas behind one Service.

Every write also appends to `gallery_changes` (`postgres_changes.py`), a log ordered by a sequence, and NOTIFYs
on commit. Replicas apply that log in order to their in-memory index (see `sync.py`): a missed
notification or a reconnect loses nothing, because catch-up is by sequence, not by message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from fingerprint.gallery import postgres_changes as changes
from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.gallery.postgres_schema import migrate, template_meta
from fingerprint.gallery.store import (
    IDEMPOTENCY_TTL_SECONDS,
    Change,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    KeptImage,
    StoredRow,
    StoreUnavailable,
    SubjectSummary,
    Template,
    TemplateErasure,
    TemplateMeta,
)

if TYPE_CHECKING:
    from fingerprint.gallery.index import GalleryIndex
    from fingerprint.gallery.sync import GallerySync

T = TypeVar("T")
# advisory lock per subject, taken before erasing and before storing a template rebuilt by `gallery
# reindex`: an erasure's DELETE then runs after (and sees) any rebuilt template committed for that
# subject, instead of missing a row inserted after its snapshot
_SUBJECT_LOCK_ID = 727_003


async def _lock_subject(conn: psycopg.AsyncConnection[Any], subject_id: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SUBJECT_LOCK_ID, subject_id))


class PostgresStore:
    replicated = True

    def __init__(self, url: str, min_size: int = 1, max_size: int = 8, timeout: float = 5.0,
                 codec: EmbeddingCodec | None = None) -> None:
        self.url = url
        self.codec = codec or EmbeddingCodec()  # its own: `refused` counts this store's rows
        self._timeout = timeout
        self._migrated = False
        self._pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
                                         kwargs={"autocommit": False, "connect_timeout": max(1, int(timeout))})

    async def _with_conn(self, fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        try:
            async with self._pool.connection() as conn:
                return await fn(conn)
        except (psycopg.OperationalError, PoolTimeout, psycopg.errors.AdminShutdown) as exc:
            raise StoreUnavailable(f"the gallery database is unavailable: {type(exc).__name__}") from exc

    async def open(self) -> None:
        """Start the pool without waiting: the database may be down now and come back later."""
        await self._pool.open(wait=False)
        self._migrated = False

    async def ensure_schema(self) -> None:
        """Run pending migrations once (an advisory lock makes concurrent replicas take turns)."""
        if not self._migrated:
            await self._with_conn(migrate)
            self._migrated = True

    async def close(self) -> None:
        await self._pool.close()

    async def add(self, template: Template, claim: IdempotencyClaim | None = None, image: KeptImage | None = None) -> int:
        return await self._insert(template, claim, image=image)

    async def add_if_absent(self, template: Template, image: KeptImage | None = None) -> bool:
        return await self._insert(template, None, if_absent=True, image=image) > 0

    async def add_derived(self, template: Template, source_id: str, image: KeptImage) -> bool:
        return await self._insert(template, None, if_absent=True, image=image, source_id=source_id) > 0

    async def _insert(self, template: Template, claim: IdempotencyClaim | None, if_absent: bool = False,
                      image: KeptImage | None = None, source_id: str | None = None) -> int:
        """The change sequence of the insert; 0 when nothing was stored (`if_absent` and the id was already
        stored, or the source of a rebuilt template is gone)."""
        m = template.meta
        sealed_image = None if image is None else self.codec.seal_image(m.template_id, image.data)
        await self.ensure_schema()

        async def insert(conn: psycopg.AsyncConnection[Any]) -> int:
            async with conn.transaction():
                if source_id is not None:
                    await _lock_subject(conn, m.subject_id)
                    cur = await conn.execute("SELECT 1 FROM templates WHERE template_id = %s", (source_id,))
                    if await cur.fetchone() is None:
                        return 0
                cur = await conn.execute(
                    "INSERT INTO templates (template_id, subject_id, finger, model_version, quality, created_at, "
                    "embedding, nfiq2, source_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    + (" ON CONFLICT (template_id) DO NOTHING" if if_absent else ""),
                    (m.template_id, m.subject_id, m.finger, m.model_version, m.quality, m.created_at,
                     self.codec.encode(m.template_id, template.embedding, template.dense, template.minutiae), m.nfiq2,
                     source_id or m.source_id))
                if cur.rowcount == 0:
                    return 0
                if sealed_image is not None:
                    await conn.execute("INSERT INTO enrollment_images VALUES (%s, %s, %s)",
                                       (m.template_id, image.dpi if image else None, sealed_image))
                if claim is not None:
                    await conn.execute("DELETE FROM idempotency_keys WHERE created_at < now() - %s * interval '1 second'",
                                       (IDEMPOTENCY_TTL_SECONDS,))
                    cur = await conn.execute(
                        "INSERT INTO idempotency_keys (key_hash, request_hash, template_id) VALUES (%s, %s, %s) "
                        "ON CONFLICT (key_hash) DO NOTHING", (claim.key_hash, claim.request_hash, m.template_id))
                    if cur.rowcount == 0:
                        raise IdempotencyKeyTaken()  # leaving the block rolls the template back too
                return await changes.append(conn, "add", [(m.subject_id, m.template_id)])

        return await self._with_conn(insert)

    async def claimed(self, key_hash: str) -> tuple[str, TemplateMeta] | None:
        await self.ensure_schema()

        async def select(conn: psycopg.AsyncConnection[Any]) -> tuple[str, TemplateMeta] | None:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "SELECT k.request_hash, t.template_id, t.subject_id, t.finger, t.model_version, t.quality, "
                    "t.created_at, t.nfiq2 FROM idempotency_keys k JOIN templates t USING (template_id) "
                    "WHERE k.key_hash = %s AND k.created_at >= now() - %s * interval '1 second'",
                    (key_hash, IDEMPOTENCY_TTL_SECONDS))
                row = await cur.fetchone()
            return None if row is None else (row["request_hash"], template_meta(row))

        return await self._with_conn(select)

    async def erase(self, subject_id: str) -> tuple[list[str], int]:
        """Delete every template of the subject in one transaction; (erased ids, change seq or 0)."""

        async def delete(conn: psycopg.AsyncConnection[Any]) -> tuple[list[str], int]:
            async with conn.transaction():
                await _lock_subject(conn, subject_id)
                cur = await conn.execute("DELETE FROM templates WHERE subject_id = %s RETURNING template_id",
                                         (subject_id,))
                ids = [r[0] for r in await cur.fetchall()]
                if not ids:
                    return [], 0
                return ids, await changes.append(conn, "erase", [(subject_id, None)])

        return await self._with_conn(delete)

    async def erase_template(self, template_id: str) -> TemplateErasure:
        await self.ensure_schema()

        async def delete(conn: psycopg.AsyncConnection[Any]) -> TemplateErasure:
            async with conn.transaction():
                cur = await conn.execute("SELECT subject_id FROM templates WHERE template_id = %s", (template_id,))
                owner = await cur.fetchone()
                if owner is None:
                    return TemplateErasure(None, 0)
                await _lock_subject(conn, str(owner[0]))
                # what was rebuilt from it for another model version goes with it
                cur = await conn.execute("DELETE FROM templates WHERE template_id = %s OR source_id = %s "
                                         "RETURNING subject_id, template_id", (template_id, template_id))
                rows = await cur.fetchall()
                if not rows:
                    return TemplateErasure(None, 0)
                seq = await changes.append(conn, "remove", [(str(r[0]), str(r[1])) for r in rows])
                return TemplateErasure(str(rows[0][0]), seq, tuple(str(r[1]) for r in rows))

        return await self._with_conn(delete)

    async def template(self, template_id: str) -> Template | None:
        async def select(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any] | None:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute("SELECT * FROM templates WHERE template_id = %s", (template_id,))
                return await cur.fetchone()

        row = await self._with_conn(select)
        decoded = None if row is None else self.codec.open_row(row["template_id"], bytes(row["embedding"]))
        return None if row is None or decoded is None else Template(template_meta(row), *decoded)

    async def subject_templates(self, subject_id: str) -> list[TemplateMeta]:
        async def select(conn: psycopg.AsyncConnection[Any]) -> list[TemplateMeta]:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "SELECT template_id, subject_id, finger, model_version, quality, created_at, nfiq2, source_id FROM templates "
                    "WHERE subject_id = %s ORDER BY created_at, template_id", (subject_id,))
                return [template_meta(r) for r in await cur.fetchall()]

        return await self._with_conn(select)

    async def subjects(self, limit: int, after: str | None) -> list[SubjectSummary]:
        async def select(conn: psycopg.AsyncConnection[Any]) -> list[SubjectSummary]:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "SELECT subject_id, count(*) AS n, array_remove(array_agg(DISTINCT finger), NULL) AS fingers, "
                    "min(created_at) AS first, max(created_at) AS last FROM templates WHERE subject_id COLLATE \"C\" > %s "
                    "GROUP BY subject_id ORDER BY subject_id COLLATE \"C\" LIMIT %s", (after or "", limit))
                return [SubjectSummary(r["subject_id"], r["n"], tuple(sorted(r["fingers"])), r["first"], r["last"])
                        for r in await cur.fetchall()]

        return await self._with_conn(select)

    async def snapshot(self, versions: tuple[str, ...]) -> tuple[list[Template], int]:
        """Every template of the versions and the change sequence they reflect, from one consistent snapshot."""
        await self.ensure_schema()

        async def read(conn: psycopg.AsyncConnection[Any]) -> tuple[list[Template], int]:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM gallery_changes")
                row = await cur.fetchone()
                seq = int(row[0]) if row else 0
                async with conn.cursor(row_factory=dict_row) as c:
                    await c.execute("SELECT * FROM templates WHERE model_version = ANY(%s) ORDER BY template_id",
                                    (list(versions),))
                    rows = await c.fetchall()
            opened = ((r, self.codec.open_row(r["template_id"], bytes(r["embedding"]))) for r in rows)
            return [Template(template_meta(r), *d) for r, d in opened if d is not None], seq

        return await self._with_conn(read)

    async def load(self, versions: tuple[str, ...], add: Callable[[Template], None]) -> int:
        templates, seq = await self.snapshot(versions)
        for t in templates:
            add(t)
        return seq

    def follower(self, index: GalleryIndex, versions: tuple[str, ...], seq: int, interval: float) -> GallerySync:
        from fingerprint.gallery.sync import GallerySync

        return GallerySync(self, index, versions, seq, interval)

    async def iter_templates(self, versions: tuple[str, ...]) -> AsyncIterator[Template]:
        templates, _ = await self.snapshot(versions)
        for t in templates:
            yield t

    async def kept_images(self) -> AsyncIterator[tuple[TemplateMeta, KeptImage]]:
        await self.ensure_schema()
        after = ""
        while True:
            async def page(conn: psycopg.AsyncConnection[Any], after: str = after) -> list[dict[str, Any]]:
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(
                        "SELECT t.*, i.dpi AS image_dpi, i.image FROM templates t JOIN enrollment_images i USING (template_id) "
                        "WHERE t.template_id > %s ORDER BY t.template_id LIMIT 100", (after,))
                    return await cur.fetchall()

            rows = await self._with_conn(page)
            if not rows:
                return
            for r in rows:
                yield template_meta(r), KeptImage(self.codec.open_image(r["template_id"], bytes(r["image"])), r["image_dpi"])
            after = rows[-1]["template_id"]

    async def iter_rows(self) -> AsyncIterator[StoredRow]:
        """Streamed from one snapshot through a server-side cursor: a gallery of millions is never in memory."""
        await self.ensure_schema()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                async with conn.cursor(name="export", row_factory=dict_row) as cur:
                    await cur.execute("SELECT t.*, i.image, i.dpi AS image_dpi FROM templates t LEFT JOIN "
                                      "enrollment_images i USING (template_id) ORDER BY t.template_id")
                    while rows := await cur.fetchmany(1000):
                        for r in rows:
                            image = None if r["image"] is None else bytes(r["image"])
                            yield StoredRow(template_meta(r), bytes(r["embedding"]), image, r["image_dpi"])
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"the gallery database is unavailable: {type(exc).__name__}") from exc

    async def changes_since(self, seq: int, versions: tuple[str, ...], limit: int = 5000) -> list[Change]:
        return await self._with_conn(lambda conn: changes.since(conn, seq, versions, limit, self.codec))

    async def count_by_version(self) -> dict[str, int]:
        async def count(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
            cur = await conn.execute("SELECT model_version, count(*) FROM templates GROUP BY model_version")
            return {r[0]: int(r[1]) for r in await cur.fetchall()}

        return await self._with_conn(count)

    async def ping(self) -> None:
        async def one(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute("SELECT 1")

        await self._with_conn(one)

    async def rotate(self) -> int:
        """Re-seal every template not under the active key, in one transaction; the count re-sealed."""
        await self.ensure_schema()

        async def rotate_all(conn: psycopg.AsyncConnection[Any]) -> int:
            async with conn.transaction():
                cur = await conn.execute("SELECT template_id, embedding FROM templates FOR UPDATE")
                rows = [(r[0], bytes(r[1])) for r in await cur.fetchall()]
                stale = [(t, b) for t, b in rows if self.codec.needs_rotation(b)]
                for tid, blob in stale:
                    await conn.execute("UPDATE templates SET embedding = %s WHERE template_id = %s",
                                       (self.codec.reseal(tid, blob), tid))
                cur = await conn.execute("SELECT template_id, image FROM enrollment_images FOR UPDATE")
                for tid, blob in [(r[0], bytes(r[1])) for r in await cur.fetchall()]:
                    if self.codec.needs_rotation(blob):
                        await conn.execute("UPDATE enrollment_images SET image = %s WHERE template_id = %s",
                                           (self.codec.reseal_image(tid, blob), tid))
                return len(stale)

        return await self._with_conn(rotate_all)

    def listen(self) -> AsyncIterator[int]:
        """Sequence numbers as they are committed; raises StoreUnavailable when the connection drops."""
        return changes.listen(self.url, self._timeout)
