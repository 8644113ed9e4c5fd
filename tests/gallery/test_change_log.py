"""The change log on a real PostgreSQL: a replica following it never passes over a committed change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from fingerprint.gallery.index import GalleryIndex
from fingerprint.gallery.postgres_store import PostgresStore
from fingerprint.gallery.store import Template, TemplateMeta
from fingerprint.gallery.sync import GallerySync


def _template(subject: str) -> Template:
    emb = np.random.default_rng(abs(hash(subject)) % 2**32).standard_normal(64).astype(np.float32)
    return Template(TemplateMeta(str(uuid.uuid4()), subject, None, "v1", 0.8, datetime.now(UTC)), emb / np.linalg.norm(emb))


async def _store(postgres: Any) -> tuple[PostgresStore, str]:
    url = postgres.create_database(f"c_{uuid.uuid4().hex[:12]}")
    store = PostgresStore(url)
    await store.open()
    await store.ensure_schema()
    return store, url


async def test_a_change_that_commits_after_a_later_one_is_still_applied(postgres: Any) -> None:
    """The slow writer draws its sequence number first and commits last (a trigger sleeps in its
    transaction): the follower must see both changes, however its reads interleave."""
    store, url = await _store(postgres)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION slow_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     "IF NEW.subject_id = 'slow' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER slow_change AFTER INSERT ON gallery_changes FOR EACH ROW EXECUTE FUNCTION slow_change()")
    index = GalleryIndex(64)
    sync = GallerySync(store, index, ("v1",), 0, interval=3600)
    try:
        slow = asyncio.create_task(store.add(_template("slow")))
        await asyncio.sleep(0.3)  # the slow writer holds its sequence number, uncommitted
        fast = asyncio.create_task(store.add(_template("fast")))
        while not (fast.done() and slow.done()):
            await sync.catch_up()  # a follower reading while the two commit in either order
            await asyncio.sleep(0.05)
        await asyncio.gather(slow, fast)
        await sync.catch_up()
        assert index.has_subject("slow") and index.has_subject("fast")
    finally:
        await store.close()


async def test_concurrent_writers_and_erasers_leave_every_follower_equal_to_the_database(postgres: Any) -> None:
    store, _ = await _store(postgres)
    followers = [GalleryIndex(64) for _ in range(2)]
    syncs = [GallerySync(store, ix, ("v1",), 0, interval=3600) for ix in followers]
    stop = asyncio.Event()

    async def follow(sync: GallerySync) -> None:
        while not stop.is_set():
            await sync.catch_up()
            await asyncio.sleep(0)

    async def writer(w: int) -> None:
        for i in range(40):
            subject = f"w{w}-{i}"
            await store.add(_template(subject))
            if i % 3 == 0:
                seq = (await store.erase(subject))[1]
                await syncs[w % 2].wait_until(seq)  # read-your-erase on the replica that answered
                assert not followers[w % 2].has_subject(subject)

    try:
        following = [asyncio.create_task(follow(s)) for s in syncs]
        await asyncio.gather(*(writer(w) for w in range(8)))
        stop.set()
        await asyncio.gather(*following)
        for sync in syncs:
            await sync.catch_up()
        stored = {t.meta.subject_id for t in (await store.snapshot(("v1",)))[0]}
        assert len(stored) == 8 * 40 - 8 * 14
        for ix in followers:
            present = {f"w{w}-{i}" for w in range(8) for i in range(40) if ix.has_subject(f"w{w}-{i}")}
            assert present == stored
    finally:
        await store.close()
