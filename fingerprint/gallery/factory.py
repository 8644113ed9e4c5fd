"""Pick the gallery store from settings: SQLite by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import GalleryStore
from fingerprint.security.template_cipher import TemplateCipher
from fingerprint.settings import Settings, SettingsError


def create_store(settings: Settings) -> GalleryStore:
    url = settings.database_url
    cipher = TemplateCipher.from_file(settings.template_key_file) if settings.template_key_file else None
    codec = EmbeddingCodec(cipher)
    if not url or url.startswith("sqlite"):
        return SqliteStore(settings.sqlite_path, codec)
    if url.startswith(("postgresql://", "postgres://")):
        from fingerprint.gallery.postgres_store import PostgresStore

        return PostgresStore(url, codec=codec)
    raise SettingsError(f"DATABASE_URL scheme of {url.split(':', 1)[0]!r} is not supported")
