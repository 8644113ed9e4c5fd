"""The SQLite store keeps what it acknowledged, erases subjects whole, and filters by model version."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import Template, TemplateMeta


def _template(tid: str, subject: str, version: str = "v1") -> Template:
    emb = np.random.default_rng(abs(hash(tid)) % 2**32).standard_normal(256).astype(np.float32)
    return Template(TemplateMeta(tid, subject, "right_index", version, 0.8, datetime.now(UTC)), emb / np.linalg.norm(emb))


async def test_round_trip_survives_reopen(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.sqlite3")
    await store.open()
    t = _template("t1", "alice")
    await store.add(t)
    await store.add(_template("t2", "alice", version="old"))
    await store.close()

    store = SqliteStore(tmp_path / "g.sqlite3")
    await store.open()
    loaded = [x async for x in store.iter_templates("v1")]
    assert [x.meta.template_id for x in loaded] == ["t1"]
    assert np.allclose(loaded[0].embedding, t.embedding, atol=1e-3)  # float16 at rest
    assert await store.count_by_version() == {"v1": 1, "old": 1}
    assert [m.template_id for m in await store.subject_templates("alice")] == ["t1", "t2"]
    await store.close()


async def test_delete_subject_erases_every_template(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.sqlite3")
    await store.open()
    for i in range(3):
        await store.add(_template(f"a{i}", "alice"))
    await store.add(_template("b0", "bob"))
    assert sorted(await store.delete_subject("alice")) == ["a0", "a1", "a2"]
    assert await store.subject_templates("alice") == []
    assert await store.delete_subject("alice") == []
    assert [m.template_id for m in await store.subject_templates("bob")] == ["b0"]
    await store.close()
