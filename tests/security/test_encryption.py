"""Templates at rest are sealed: a stolen database reveals nothing without the key; keys rotate."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from fingerprint.cli import main
from fingerprint.gallery.codec import PLAIN, EmbeddingCodec
from fingerprint.gallery.postgres_store import PostgresStore
from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import GalleryStore, Template, TemplateMeta
from fingerprint.security.template_cipher import CipherError, TemplateCipher


def _template(tid: str) -> Template:
    rng = np.random.default_rng(7)
    v = rng.standard_normal(256).astype(np.float32)
    grid = rng.integers(-127, 128, (64, 10, 10)).astype(np.int8)
    return Template(TemplateMeta(tid, "alice", None, "v1", 0.9, datetime.now(UTC)), v / np.linalg.norm(v), grid)


def _cipher(tmp_path: Path, kid: str, previous: Path | None = None) -> tuple[Path, TemplateCipher]:
    path = tmp_path / f"{kid}.json"
    TemplateCipher.new_key_file(path, kid, previous)
    return path, TemplateCipher.from_file(path)


def test_sealed_template_reveals_nothing_and_resists_tampering(tmp_path: Path) -> None:
    _, cipher = _cipher(tmp_path, "k1")
    codec = EmbeddingCodec(cipher)
    t = _template("t1")
    plain = PLAIN.encode("t1", t.embedding, t.dense)
    sealed = codec.encode("t1", t.embedding, t.dense)
    assert all(plain[i : i + 16] not in sealed for i in range(0, len(plain) - 16, 100))
    vec, grid, _ = codec.decode("t1", sealed)
    assert np.allclose(vec, t.embedding, atol=1e-3)
    assert np.array_equal(grid, t.dense)
    with pytest.raises(CipherError):
        codec.decode("t2", sealed)  # moved onto another row
    with pytest.raises(CipherError):
        PLAIN.decode("t1", sealed)  # read without the key
    _, other = _cipher(tmp_path, "k1b")
    with pytest.raises(CipherError):
        EmbeddingCodec(TemplateCipher({"k1": b"\x01" * 32}, "k1")).decode("t1", sealed)  # wrong key, same id
    assert other.active == "k1b"


@pytest.fixture(params=["sqlite", "postgres"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[EmbeddingCodec], GalleryStore]:
    if request.param == "sqlite":
        return lambda codec: SqliteStore(tmp_path / "g.sqlite3", codec)
    url = request.getfixturevalue("postgres").create_database(f"e_{uuid.uuid4().hex[:12]}")
    return lambda codec: PostgresStore(url, codec=codec)


async def _load(store: GalleryStore) -> list[Template]:
    if isinstance(store, PostgresStore):
        templates, _ = await store.snapshot(("v1",))
        return templates
    return [t async for t in store.iter_templates(("v1",))]


async def test_rotation_reseals_every_row_in_both_stores(tmp_path: Path,
                                                          store_at: Callable[[EmbeddingCodec], GalleryStore]) -> None:
    k1_path, k1 = _cipher(tmp_path, "k1")
    store = store_at(EmbeddingCodec(k1))
    await store.open()
    await _load(store)
    t = _template("t1")
    await store.add(t)
    await store.close()

    k2_path, k2 = _cipher(tmp_path, "k2", previous=k1_path)
    store = store_at(EmbeddingCodec(k2))
    await store.open()
    assert await store.rotate() == 1
    assert await store.rotate() == 0
    await store.close()

    only_k2 = TemplateCipher({"k2": _raw_key(k2_path, "k2")}, "k2")
    store = store_at(EmbeddingCodec(only_k2))  # k1 retired: every row must now be readable with k2 alone
    await store.open()
    (loaded,) = await _load(store)
    assert np.allclose(loaded.embedding, t.embedding, atol=1e-3)
    assert np.array_equal(loaded.dense, t.dense)  # the grid is re-sealed with the vector
    await store.close()


def _raw_key(path: Path, kid: str) -> bytes:
    import base64
    import json

    return base64.b64decode(json.loads(path.read_text())["keys"][kid])


def test_sqlite_file_holds_only_sealed_blobs(tmp_path: Path, monkeypatch: Any) -> None:
    key_path = tmp_path / "tk.json"
    runner = CliRunner()
    assert runner.invoke(main, ["new-template-key", "--file", str(key_path), "--id", "k1"]).exit_code == 0
    cipher = TemplateCipher.from_file(key_path)
    import asyncio

    async def write() -> None:
        store = SqliteStore(tmp_path / "data" / "gallery.sqlite3", EmbeddingCodec(cipher))
        await store.open()
        await store.add(_template("t9"))
        await store.close()

    asyncio.run(write())
    blob = sqlite3.connect(tmp_path / "data" / "gallery.sqlite3").execute("SELECT embedding FROM templates").fetchone()[0]
    assert blob.startswith(b"FPE1") and PLAIN.encode("", _template("t9").embedding)[:32] not in blob
    monkeypatch.setenv("TEMPLATE_KEY_FILE", str(key_path))
    result = runner.invoke(main, ["rotate-key", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0 and "re-sealed 0 templates" in result.output


async def test_a_planted_plain_row_is_refused_when_sealing_is_configured(
        tmp_path: Path, store_at: Callable[[EmbeddingCodec], GalleryStore]) -> None:
    """Anyone who can write to the database could plant an unsealed template under a victim's id; before,
    it was loaded and the attacker's print verified as the victim. Now it is refused, logged and counted,
    and `rotate-key` remains the one deliberate way to seal an older plain gallery."""
    _, k1 = _cipher(tmp_path, "k1")
    sealing = EmbeddingCodec(k1)
    store = store_at(sealing)
    await store.open()
    await _load(store)
    await store.add(_template("victim"))
    await store.close()

    planter = store_at(PLAIN)  # the attacker's write: a well-formed row, but not sealed
    await planter.open()
    await planter.add(_template("planted"))
    await planter.close()

    store = store_at(EmbeddingCodec(k1))
    await store.open()
    assert [t.meta.template_id for t in await _load(store)] == ["victim"]
    assert store.codec.refused == 1
    assert await store.rotate() == 1  # the operator's explicit migration seals it
    assert sorted(t.meta.template_id for t in await _load(store)) == ["planted", "victim"]
    await store.close()


async def test_the_service_never_matches_a_planted_row(app_client: Callable[..., Any], tmp_path: Path,
                                                       png_prints: list[list[bytes]]) -> None:
    import base64

    key_path, _ = _cipher(tmp_path, "k1")
    async with app_client(template_key_file=key_path) as c:
        r = await c.post("/api/v1/fingerprint/enroll",
                         json={"image": base64.b64encode(png_prints[0][0]).decode(), "subject_id": "victim"})
        assert r.status_code == 201
        attacker = await c.app.state.service.pipeline.extract(png_prints[1][0], 500.0, _deadline(), min_quality=0.0)
    # plant the attacker's template, unsealed, under the victim's id, straight into the database file
    row = PLAIN.encode("planted", attacker.template, attacker.dense, attacker.minutiae)
    db = sqlite3.connect(tmp_path / "data" / "gallery.sqlite3")
    version = db.execute("SELECT model_version FROM templates").fetchone()[0]
    db.execute("INSERT INTO templates (template_id, subject_id, finger, model_version, quality, created_at, embedding) "
               "VALUES ('planted', 'victim', NULL, ?, 0.9, ?, ?)",
               (version, datetime.now(UTC).isoformat(), row))
    db.commit()
    db.close()
    async with app_client(template_key_file=key_path) as c:
        r = await c.post("/api/v1/fingerprint/verify",
                         json={"image": base64.b64encode(png_prints[1][1]).decode(), "subject_id": "victim"})
        assert r.status_code == 200 and r.json()["template_id"] != "planted" and r.json()["match"] is False
        gallery = (await c.get("/api/v1/status")).json()["gallery"]
        assert gallery["size"] == 1 and gallery["refused_templates"] == 1


def _deadline() -> Any:
    from fingerprint.batching.deadline import Deadline

    return Deadline.after(30)
