"""The embedded gallery's schema: created on first open, columns added as later versions need them."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from fingerprint.gallery.store import TemplateMeta

_SCHEMA = """
CREATE TABLE IF NOT EXISTS templates (
    template_id   TEXT PRIMARY KEY,
    subject_id    TEXT NOT NULL,
    finger        TEXT,
    model_version TEXT NOT NULL,
    quality       REAL NOT NULL,
    created_at    TEXT NOT NULL,
    embedding     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_subject ON templates(subject_id);
CREATE INDEX IF NOT EXISTS templates_version ON templates(model_version);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key_hash     TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    template_id  TEXT NOT NULL REFERENCES templates(template_id) ON DELETE CASCADE,
    created_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys(created_at);
CREATE INDEX IF NOT EXISTS idempotency_keys_template ON idempotency_keys(template_id);
CREATE TABLE IF NOT EXISTS enrollment_images (
    template_id TEXT PRIMARY KEY REFERENCES templates(template_id) ON DELETE CASCADE,
    dpi         REAL,
    image       BLOB NOT NULL
);
"""


def template_meta(row: sqlite3.Row) -> TemplateMeta:
    """A `templates` row's metadata (whatever else the query selected)."""
    return TemplateMeta(
        template_id=row["template_id"],
        subject_id=row["subject_id"],
        finger=row["finger"],
        model_version=row["model_version"],
        quality=row["quality"],
        created_at=datetime.fromisoformat(row["created_at"]),
        nfiq2=row["nfiq2"],
        source_id=row["source_id"],
    )


def create_or_upgrade(conn: sqlite3.Connection) -> None:
    """The tables, and the columns later versions added on a gallery an earlier version created."""
    conn.executescript(_SCHEMA)
    have = {r[1] for r in conn.execute("PRAGMA table_info(templates)")}
    if "nfiq2" not in have:
        conn.execute("ALTER TABLE templates ADD COLUMN nfiq2 INTEGER")
    if "source_id" not in have:
        conn.execute("ALTER TABLE templates ADD COLUMN source_id TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS templates_source ON templates(source_id)")
