"""Pick the gallery store from settings: SQLite by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import GalleryStore
from fingerprint.gallery.vector_engine import MilvusCollection, VectorEngine
from fingerprint.security.template_cipher import CipherError, TemplateCipher
from fingerprint.settings import Settings, SettingsError


def load_template_cipher(settings: Settings) -> TemplateCipher | None:
    """The template keys, or a SettingsError that says what is wrong with the file (never a traceback)."""
    if settings.template_key_file is None:
        return None
    try:
        return TemplateCipher.from_file(settings.template_key_file)
    except (OSError, ValueError, KeyError, TypeError, CipherError) as exc:
        raise SettingsError(f"TEMPLATE_KEY_FILE={settings.template_key_file} is not a usable key file "
                            f"({type(exc).__name__}: {exc})") from exc


def create_store(settings: Settings, cipher: TemplateCipher | None = None) -> GalleryStore:
    url = settings.database_url
    codec = EmbeddingCodec(cipher if cipher is not None else load_template_cipher(settings))
    if not url or url.startswith("sqlite"):
        return SqliteStore(settings.sqlite_path, codec)
    if url.startswith(("postgresql://", "postgres://")):
        from fingerprint.gallery.postgres_store import PostgresStore

        return PostgresStore(url, codec=codec)
    raise SettingsError(f"DATABASE_URL scheme of {url.split(':', 1)[0]!r} is not supported")


def create_vector_engine(settings: Settings) -> VectorEngine | None:
    """How to reach the vector engine's collection for a model, or None to scan in memory."""
    if settings.vector_engine != "milvus":
        return None
    token = "" if settings.vector_engine_token_file is None else settings.vector_engine_token_file.read_text().strip()
    uri = settings.vector_engine_uri
    return lambda version, dim: MilvusCollection(uri, token, version, dim)
