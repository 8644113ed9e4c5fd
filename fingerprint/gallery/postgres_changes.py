"""The change log that keeps PostgreSQL replicas in step: every write appends to `gallery_changes` in its
own transaction and NOTIFYs on commit; replicas read the log by sequence (see `sync.py`), so a missed
notification or a reconnect loses nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.rows import dict_row

from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.gallery.postgres_schema import template_meta
from fingerprint.gallery.store import Change, StoreUnavailable, Template

CHANNEL = "fingerprint_gallery"
# advisory lock held from a change's sequence number to its commit: sequence numbers are drawn at
# insert but become visible at commit, so without it a replica reading `seq > last` could pass over
# a change that commits after a later one (an erased subject would stay matchable). With it, commit
# order is sequence order. Writes queue for one insert and a commit; enrolls are model-bound anyway.
_CHANGES_LOCK_ID = 727_002


async def append(conn: psycopg.AsyncConnection[Any], op: str, entries: list[tuple[str, str | None]]) -> int:
    """Log (subject, template) changes inside the caller's transaction; the last sequence number."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHANGES_LOCK_ID,))
    seq = 0
    for subject_id, template_id in entries:
        cur = await conn.execute("INSERT INTO gallery_changes (op, subject_id, template_id) VALUES (%s, %s, %s) "
                                 "RETURNING seq", (op, subject_id, template_id))
        row = await cur.fetchone()
        seq = int(row[0]) if row else seq
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(seq)))
    return seq


async def since(conn: psycopg.AsyncConnection[Any], seq: int, versions: tuple[str, ...], limit: int,
                codec: EmbeddingCodec) -> list[Change]:
    """The changes after `seq`, in order; an added template is carried when its version is searched."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT c.seq, c.op, c.subject_id, c.template_id AS change_template, t.template_id, t.finger, "
            "t.model_version, t.quality, t.created_at, t.nfiq2, t.embedding, t.subject_id AS t_subject "
            "FROM gallery_changes c LEFT JOIN templates t ON c.op = 'add' AND t.template_id = c.template_id "
            "WHERE c.seq > %s ORDER BY c.seq LIMIT %s", (seq, limit))
        rows = await cur.fetchall()
    out = []
    for r in rows:
        template = None
        if r["op"] == "add" and r["template_id"] is not None and r["model_version"] in versions:
            decoded = codec.open_row(r["template_id"], bytes(r["embedding"]))
            if decoded is not None:
                template = Template(template_meta({**r, "subject_id": r["t_subject"]}), *decoded)
        out.append(Change(seq=int(r["seq"]), op=r["op"], subject_id=r["subject_id"], template=template,
                          template_id=r["change_template"]))
    return out


async def listen(url: str, timeout: float) -> AsyncIterator[int]:
    """Sequence numbers as they are committed; raises StoreUnavailable when the connection drops."""
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True,
                                                         connect_timeout=max(1, int(timeout))) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            async for note in conn.notifies():
                yield int(note.payload) if note.payload.isdigit() else 0
    except psycopg.OperationalError as exc:
        raise StoreUnavailable("the gallery notification channel dropped") from exc
