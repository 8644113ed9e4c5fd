"""Identify's first stage from Milvus (embedded milvus-lite): the same answers as the in-memory scan,
whatever the engine's lag, and an erasure that reaches the engine."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fingerprint.gallery import engine_shortlist
from fingerprint.gallery.engine_shortlist import EngineShortlist, EngineSync
from fingerprint.gallery.index import GalleryIndex, Hit
from fingerprint.gallery.vector_engine import EngineUnavailable, MilvusCollection, VectorCollection, collection_name
from tests.process import Server

pytest.importorskip("milvus_lite", reason="the milvus extra (pip install '.[milvus]') is part of the dev install")

DIM = 32


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusCollection]:
    yield MilvusCollection(str(tmp_path_factory.mktemp("milvus") / "lite.db"), "", "test-1.0", DIM)


def _held(collection: VectorCollection, ids: list[str]) -> set[str]:
    """Which of `ids` the engine holds, read through its pages of every id as the sweep reads them."""
    return {i for page in collection.all_ids() for i in page}.intersection(ids)


def _same(a: list[Hit], b: list[Hit]) -> bool:
    """The same hits in the same order, scores equal to float32 rounding (one matrix product against many)."""
    return [h.template_id for h in a] == [h.template_id for h in b] and \
        all(abs(x.score - y.score) < 1e-6 for x, y in zip(a, b, strict=True))


def _pair(collection: VectorCollection, n: int, seed: int) -> tuple[GalleryIndex, GalleryIndex, EngineSync, np.ndarray]:
    """The same gallery in memory and on the engine (templates t0..tn-1, two per subject)."""
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, n)
    memory, engine = GalleryIndex(DIM), GalleryIndex(DIM, engine=EngineShortlist("milvus"))
    for i, v in enumerate(vectors):
        for index in (memory, engine):
            index.add(f"s{seed}-t{i}", f"s{seed}-subject{i // 2}", None, v)
    stored = {f"s{seed}-t{i}" for i in range(n)}

    async def in_store(template_id: str) -> bool:
        return template_id in stored

    sync = EngineSync(engine.engine, lambda: collection, engine.template_ids, engine.vectors_of, in_store, 1.0)  # type: ignore[arg-type]
    return memory, engine, sync, vectors


class _Sealing:
    """The collection, counting how often it is sealed."""

    def __init__(self, inner: MilvusCollection) -> None:
        self.inner, self.seals = inner, 0

    def seal(self) -> None:
        self.seals += 1
        self.inner.seal()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_the_engines_shortlist_gives_the_in_memory_answers(milvus: MilvusCollection,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_shortlist, "SEAL_AFTER_ROWS", 300)  # a bulk write is sealed (searched fast)
    sealing = _Sealing(milvus)
    memory, engine, sync, vectors = _pair(sealing, 400, seed=1)  # type: ignore[arg-type]
    assert engine.engine is not None and engine.engine.candidates(vectors[:1], 5) is None  # not compared yet: scan
    await sync.sweep()
    assert engine.engine.counts() == (400, 0)  # the engine lacked all of them: found in memory meanwhile
    await sync.write()
    assert engine.engine.counts() == (0, 0) and len(_held(milvus, [f"s1-t{i}" for i in range(400)])) == 400
    assert sealing.seals == 1
    probes = vectors[:20] + 0.3 * _unit(np.random.default_rng(9), 20)
    assert engine.engine.candidates(probes, 5) is not None  # the engine answers now
    for p in probes:
        assert _same(engine.search(p, 10), memory.search(p, 10))


async def test_a_template_the_engine_lacks_is_found_and_an_erased_one_never(milvus: MilvusCollection) -> None:
    memory, engine, sync, vectors = _pair(milvus, 50, seed=2)
    await sync.sweep()
    await sync.write()
    fresh = _unit(np.random.default_rng(3), 1)[0]
    for index in (memory, engine):
        index.add("s2-fresh", "s2-newcomer", None, fresh)
    assert engine.engine is not None and engine.engine.counts() == (1, 0)
    assert engine.search(fresh, 1)[0].subject_id == "s2-newcomer"  # before the engine has it
    for index in (memory, engine):
        index.remove_subject("s2-subject0")
    assert engine.engine.counts() == (1, 2)
    hits = engine.search(vectors[0], 50)
    assert "s2-subject0" not in {h.subject_id for h in hits} and _same(hits, memory.search(vectors[0], 50))
    await sync.write()
    assert _held(milvus, ["s2-t0", "s2-t1", "s2-fresh"]) == {"s2-fresh"}  # the erasure reached the engine
    assert engine.engine.counts() == (0, 0)


async def test_the_sweep_deletes_what_no_store_holds_and_keeps_other_replicas_enrolments(milvus: MilvusCollection) -> None:
    _, engine, sync, vectors = _pair(milvus, 10, seed=4)
    ghosts = _unit(np.random.default_rng(5), 2)
    milvus.upsert(["s4-erased-while-down", "s4-t3"], np.stack([ghosts[0], vectors[3]]))  # one erased while down

    async def stored(template_id: str) -> bool:
        return template_id != "s4-erased-while-down"  # every other id: in the store (another replica's too)

    milvus.upsert(["s4-other-replicas"], ghosts[:1])
    sync = EngineSync(engine.engine, lambda: milvus, engine.template_ids, engine.vectors_of, stored, 1.0)  # type: ignore[arg-type]
    await sync.sweep()
    assert _held(milvus, ["s4-erased-while-down", "s4-other-replicas"]) == {"s4-other-replicas"}
    assert engine.engine is not None and engine.engine.counts() == (9, 0)  # all but s4-t3, which it held already
    await sync.write()
    assert len(_held(milvus, [f"s4-t{i}" for i in range(10)])) == 10


class _Flaky:
    """An engine that refuses every call until it is back `up` (then it knows every template)."""

    def __init__(self, ids: list[str]) -> None:
        self.ids, self.up = ids, False

    def search(self, vectors: np.ndarray, limit: int) -> list[list[str]]:
        if not self.up:
            raise EngineUnavailable("connection refused")
        return [self.ids[:limit] for _ in vectors]


async def test_identify_scans_in_memory_while_the_engine_is_down() -> None:
    rng = np.random.default_rng(6)
    memory, engine = GalleryIndex(DIM), GalleryIndex(DIM, engine=EngineShortlist("milvus"))
    vectors = _unit(rng, 30)
    for i, v in enumerate(vectors):
        memory.add(f"t{i}", f"s{i}", None, v)
        engine.add(f"t{i}", f"s{i}", None, v)
    assert engine.engine is not None
    flaky = _Flaky([f"t{i}" for i in range(30)])
    engine.engine.collection, engine.engine.synced = flaky, True  # type: ignore[assignment]
    engine.engine.written([f"t{i}" for i in range(30)])
    assert _same(engine.search(vectors[3], 5), memory.search(vectors[3], 5))
    status = engine.engine.status()
    assert (status.state, status.fallbacks) == ("unavailable", 1) and "refused" in status.last_error

    async def stored(template_id: str) -> bool:
        return True

    sync = EngineSync(engine.engine, lambda: flaky, engine.template_ids, engine.vectors_of, stored, 1.0)  # type: ignore[arg-type]
    await sync.write()  # nothing to write: no call reached the engine, so it is not reported back
    assert engine.engine.status().state == "unavailable"
    flaky.up = True
    assert _same(engine.search(vectors[3], 5), memory.search(vectors[3], 5))
    assert (engine.engine.status().state, engine.engine.status().fallbacks) == ("synced", 1)  # answered: back


async def test_sync_retries_an_engine_that_cannot_be_reached() -> None:
    index = GalleryIndex(DIM, engine=EngineShortlist("milvus"))
    attempts = 0

    def connect() -> VectorCollection:
        nonlocal attempts
        attempts += 1
        raise EngineUnavailable("no route to host")

    async def stored(template_id: str) -> bool:
        return True

    sync = EngineSync(index.engine, connect, index.template_ids, index.vectors_of, stored, 0.01)  # type: ignore[arg-type]
    sync.start()
    await asyncio.sleep(0.3)
    await sync.stop()
    assert attempts >= 2 and index.engine is not None and index.engine.status().state == "unavailable"


@pytest.mark.slow
def test_a_real_server_on_milvus_identifies_and_erases_from_the_engine(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    uri = str(tmp_path / "milvus.db")
    server = Server(tmp_path / "data", VECTOR_ENGINE="milvus", VECTOR_ENGINE_URI=uri, GALLERY_SYNC_INTERVAL="0.2")
    try:
        server.wait_ready(120)
        b64 = [[base64.b64encode(p).decode() for p in finger] for finger in png_prints]
        with httpx.Client(base_url=server.url, timeout=60) as c:
            ids = {}
            for i, subject in enumerate(("alice", "bob", "carol")):
                r = c.post("/api/v1/fingerprint/enroll", json={"image": b64[i][0], "subject_id": subject})
                assert r.status_code == 201, r.text
                ids[subject] = r.json()["template_id"]
            engine = {}
            for _ in range(100):  # the sync writes within a few intervals
                engine = c.get("/api/v1/status").json()["gallery"]["engine"]
                if engine["state"] == "synced" and engine["unwritten"] == 0:
                    break
                time.sleep(0.1)
            assert engine["state"] == "synced" and engine["unwritten"] == 0, engine
            version = c.get("/api/v1/status").json()["model"]["version"]
            for i, subject in enumerate(("alice", "bob", "carol")):
                r = c.post("/api/v1/fingerprint/identify", json={"image": b64[i][1], "threshold": 0.0, "top_k": 3})
                assert r.status_code == 200 and r.json()["candidates"][0]["subject_id"] == subject, r.text
            assert c.delete("/api/v1/subjects/bob").status_code in (200, 204)
            r = c.post("/api/v1/fingerprint/identify", json={"image": b64[1][1], "threshold": 0.0, "top_k": 3})
            assert "bob" not in {x["subject_id"] for x in r.json()["candidates"]}
            for _ in range(100):
                engine = c.get("/api/v1/status").json()["gallery"]["engine"]
                if engine["unerased"] == 0:
                    break
                time.sleep(0.1)
            assert engine["unerased"] == 0 and engine["fallbacks"] == 0, engine
    finally:
        server.stop()
    left = MilvusCollection(uri, "", version, 0)  # the service's collection for its model version
    assert left.name == collection_name(version)
    assert _held(left, list(ids.values())) == {ids["alice"], ids["carol"]}  # bob's search vector is gone
