"""The shared gallery's schema: migrations applied in order, once, whichever replica starts first."""

from __future__ import annotations

from typing import Any

import psycopg

from fingerprint.gallery.store import TemplateMeta

_LOCK_ID = 727_001  # advisory lock serialising migrations across replicas

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE templates (
        template_id   TEXT PRIMARY KEY,
        subject_id    TEXT NOT NULL,
        finger        TEXT,
        model_version TEXT NOT NULL,
        quality       REAL NOT NULL,
        created_at    TIMESTAMPTZ NOT NULL,
        embedding     BYTEA NOT NULL
    );
    CREATE INDEX templates_subject ON templates (subject_id);
    CREATE INDEX templates_version ON templates (model_version);
    CREATE TABLE gallery_changes (
        seq         BIGSERIAL PRIMARY KEY,
        op          TEXT NOT NULL CHECK (op IN ('add', 'erase')),
        subject_id  TEXT NOT NULL,
        template_id TEXT,
        changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    """,
    # one template erased ("remove"), beside a whole subject ("erase")
    """
    ALTER TABLE gallery_changes DROP CONSTRAINT gallery_changes_op_check;
    ALTER TABLE gallery_changes ADD CONSTRAINT gallery_changes_op_check CHECK (op IN ('add', 'erase', 'remove'));
    """,
    # enroll's Idempotency-Key, forgotten with its template (erasure) or after a day
    """
    CREATE TABLE idempotency_keys (
        key_hash     TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        template_id  TEXT NOT NULL REFERENCES templates (template_id) ON DELETE CASCADE,
        created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
    CREATE INDEX idempotency_keys_template ON idempotency_keys (template_id);
    """,
    "ALTER TABLE templates ADD COLUMN nfiq2 SMALLINT",
    # KEEP_ENROLLMENT_IMAGES, and templates rebuilt from them by `gallery reindex`
    """
    CREATE TABLE enrollment_images (
        template_id TEXT PRIMARY KEY REFERENCES templates (template_id) ON DELETE CASCADE,
        dpi         DOUBLE PRECISION,
        image       BYTEA NOT NULL
    );
    ALTER TABLE templates ADD COLUMN source_id TEXT;
    CREATE INDEX templates_source ON templates (source_id);
    """,
)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        row = await cur.fetchone()
        done = int(row[0]) if row else 0
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version > done:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))


def template_meta(row: dict[str, Any]) -> TemplateMeta:
    """A `templates` row's metadata (whatever else the query selected)."""
    return TemplateMeta(template_id=row["template_id"], subject_id=row["subject_id"], finger=row["finger"],
                        model_version=row["model_version"], quality=float(row["quality"]),
                        created_at=row["created_at"], nfiq2=row.get("nfiq2"), source_id=row.get("source_id"))
