"""Both stores, one set of tests: acknowledged writes persist, subjects erase whole, versions filter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fingerprint.gallery.postgres_store import PostgresStore
from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import (
    GalleryStore,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    StoreUnavailable,
    Template,
    TemplateMeta,
)


def _template(tid: str, subject: str, version: str = "v1") -> Template:
    emb = np.random.default_rng(abs(hash(tid)) % 2**32).standard_normal(256).astype(np.float32)
    return Template(TemplateMeta(tid, subject, "right_index", version, 0.8, datetime.now(UTC)),
                    emb / np.linalg.norm(emb))


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], GalleryStore]:
    """A factory opening the same store location again (to test what survives a reopen)."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "g.sqlite3")
    server = request.getfixturevalue("postgres")
    url = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    return lambda: PostgresStore(url)


@pytest.fixture
async def store(make_store: Callable[[], GalleryStore]) -> AsyncIterator[GalleryStore]:
    s = make_store()
    await s.open()
    yield s
    await s.close()


async def _all(s: GalleryStore, version: str) -> list[Template]:
    if isinstance(s, PostgresStore):
        await s.ensure_schema()
    return [t async for t in s.iter_templates((version,))]


async def test_round_trip_survives_reopen(make_store: Callable[[], GalleryStore]) -> None:
    s = make_store()
    await s.open()
    t = _template("t1", "alice")
    await _all(s, "v1")
    await s.add(t)
    await s.add(_template("t2", "alice", version="old"))
    await s.close()

    s = make_store()
    await s.open()
    loaded = await _all(s, "v1")
    assert [x.meta.template_id for x in loaded] == ["t1"]
    assert np.allclose(loaded[0].embedding, t.embedding, atol=1e-3)  # float16 at rest
    assert loaded[0].dense is None
    await s.close()

    s = make_store()
    await s.open()
    grid = np.random.default_rng(3).integers(-127, 128, (64, 10, 10)).astype(np.int8)
    await s.add(Template(_template("t3", "bob").meta, t.embedding, grid))
    await s.close()
    s = make_store()
    await s.open()
    (with_grid,) = [x for x in await _all(s, "v1") if x.meta.template_id == "t3"]
    assert np.array_equal(with_grid.dense, grid)  # the descriptor grid survives byte for byte
    assert await s.count_by_version() == {"v1": 2, "old": 1}
    assert [m.template_id for m in await s.subject_templates("alice")] == ["t1", "t2"]
    await s.close()


async def test_erase_removes_every_template_of_the_subject(store: GalleryStore) -> None:
    await _all(store, "v1")
    for i in range(3):
        await store.add(_template(f"a{i}", "alice"))
    await store.add(_template("b0", "bob"))
    assert sorted((await store.erase("alice"))[0]) == ["a0", "a1", "a2"]
    assert await store.subject_templates("alice") == []
    assert (await store.erase("alice"))[0] == []
    assert [m.template_id for m in await store.subject_templates("bob")] == ["b0"]


async def test_erase_template_removes_that_template_only(store: GalleryStore) -> None:
    await _all(store, "v1")
    await store.add(_template("a0", "alice"))
    await store.add(_template("a1", "alice"))
    assert (await store.erase_template("a0")).subject_id == "alice"
    assert [m.template_id for m in await store.subject_templates("alice")] == ["a1"]
    assert (await store.erase_template("a0")).subject_id is None
    assert [t.meta.template_id for t in await _all(store, "v1")] == ["a1"]


async def test_an_idempotency_claim_commits_with_its_template_or_not_at_all(store: GalleryStore) -> None:
    await _all(store, "v1")
    claim = IdempotencyClaim("key-hash", "request-hash")
    await store.add(_template("i0", "ivy"), claim)
    with pytest.raises(IdempotencyKeyTaken):
        await store.add(_template("i1", "ivy"), claim)
    assert [m.template_id for m in await store.subject_templates("ivy")] == ["i0"]  # rolled back together
    prior = await store.claimed("key-hash")
    assert prior is not None and prior[0] == "request-hash" and prior[1].template_id == "i0"
    assert await store.claimed("other") is None
    await store.erase_template("i0")
    assert await store.claimed("key-hash") is None
    await store.add(_template("i2", "ivy"), claim)  # erased with its template: the key is free again
    assert (await store.claimed("key-hash") or ("", None))[1].template_id == "i2"  # type: ignore[union-attr]


async def test_subjects_page_in_id_order_by_keyset(store: GalleryStore) -> None:
    await _all(store, "v1")
    ids = ["Zed", "alice", "bob", "bob.2", "carol", "dave:1", "eve"]  # byte order: upper case first
    for n, subject in enumerate(ids):
        for k in range(1 + n % 2):
            await store.add(_template(f"{subject}-{k}", subject))
    first = await store.subjects(3, None)
    assert [s.subject_id for s in first] == ["Zed", "alice", "bob"]
    assert first[1].templates == 2 and first[1].fingers == ("right_index",)
    assert first[1].first_enrolled <= first[1].last_enrolled
    rest = await store.subjects(10, first[-1].subject_id)
    assert [s.subject_id for s in rest] == ["bob.2", "carol", "dave:1", "eve"]
    await store.erase("carol")  # a page boundary survives erasures and enrolments around it
    await store.add(_template("bobby-0", "bobby"))
    assert [s.subject_id for s in await store.subjects(10, "bob")] == ["bob.2", "bobby", "dave:1", "eve"]
    assert await store.subjects(10, "eve") == []


async def test_duplicate_template_id_is_refused_and_changes_nothing(store: GalleryStore) -> None:
    await _all(store, "v1")
    await store.add(_template("dup", "alice"))
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own integrity error
        await store.add(_template("dup", "mallory"))
    assert [m.subject_id for m in await store.subject_templates("alice")] == ["alice"]
    assert await store.subject_templates("mallory") == []


async def test_postgres_change_log_is_ordered_and_complete(postgres: Any) -> None:
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    s = PostgresStore(url)
    await s.open()
    _, seq0 = await s.snapshot(("v1",))
    a = await s.add(_template("x1", "s1"))
    b = await s.add(_template("x2", "s2"))
    ids, c = await s.erase("s1")
    erased = await s.erase_template("x2")
    assert seq0 < a < b < c < erased.seq and ids == ["x1"] and erased.subject_id == "s2"
    changes = await s.changes_since(seq0, ("v1",))
    assert [(ch.op, ch.subject_id) for ch in changes] == [("add", "s1"), ("add", "s2"), ("erase", "s1"),
                                                          ("remove", "s2")]
    assert changes[3].template_id == "x2"
    assert changes[0].template is None  # erased since: its bytes are gone from the log's view too
    assert changes[1].template is None  # x2 was erased since as well
    await s.close()


async def test_postgres_down_raises_store_unavailable(postgres: Any) -> None:
    s = PostgresStore(f"postgresql://postgres@127.0.0.1:{postgres.port + 1}/nothing", timeout=1)
    await s.open()
    with pytest.raises(StoreUnavailable):
        await s.ping()
    await s.close()
