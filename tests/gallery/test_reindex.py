"""Model upgrades without recapture: kept enrolment images (sealed, erased with their template) and
`fingerprint gallery reindex` building the next version's templates while the current one serves."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.gallery.postgres_store import PostgresStore
from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import GalleryStore, KeptImage, Template, TemplateMeta
from fingerprint.security.template_cipher import TemplateCipher
from tests.conftest import card_variant
from tests.process import Server


def _template(tid: str, subject: str, version: str = "v1") -> Template:
    emb = np.random.default_rng(abs(hash(tid)) % 2**32).standard_normal(256).astype(np.float32)
    return Template(TemplateMeta(tid, subject, None, version, 0.8, datetime.now(UTC)), emb / np.linalg.norm(emb))


@pytest.fixture(params=["sqlite", "postgres"])
async def sealed_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GalleryStore]:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    TemplateCipher.new_key_file(old, "a")
    TemplateCipher.new_key_file(new, "b", previous=old)
    request.node.key_files = (old, new)
    codec = EmbeddingCodec(TemplateCipher.from_file(old))
    if request.param == "sqlite":
        store: GalleryStore = SqliteStore(tmp_path / "g.sqlite3", codec)
    else:
        store = PostgresStore(request.getfixturevalue("postgres").create_database(f"k_{uuid.uuid4().hex[:12]}"),
                              codec=codec)
    await store.open()
    if isinstance(store, PostgresStore):
        await store.ensure_schema()
    yield store
    await store.close()


async def test_kept_images_are_sealed_rotated_and_erased_with_their_template(sealed_store: GalleryStore,
                                                                           request: pytest.FixtureRequest) -> None:
    s = sealed_store
    await s.add(_template("t1", "ann"), image=KeptImage(b"\x89PNG-ann", 500.0))
    await s.add(_template("t2", "bob"), image=KeptImage(b"\x89PNG-bob", None))
    await s.add(_template("t3", "bob"))  # enrolled while images were not kept
    assert [(m.template_id, k) for m, k in [x async for x in s.kept_images()]] == [
        ("t1", KeptImage(b"\x89PNG-ann", 500.0)), ("t2", KeptImage(b"\x89PNG-bob", None))]

    s.codec.cipher = TemplateCipher.from_file(request.node.key_files[1])  # a new active key, the old one kept
    assert await s.rotate() == 3
    (_, first), _ = [x async for x in s.kept_images()]
    assert first == KeptImage(b"\x89PNG-ann", 500.0)  # re-sealed with the templates, still opens
    # a template rebuilt from t2 for another version: stored with the image, erased with its source
    rebuilt = Template(TemplateMeta("t2-v2", "bob", None, "v2", 0.9, datetime.now(UTC)), _template("x", "bob").embedding)
    assert await s.add_derived(rebuilt, "t2", KeptImage(b"\x89PNG-bob", None))
    assert await s.count_by_version() == {"v1": 3, "v2": 1}
    assert (await s.erase_template("t2")).template_ids == ("t2", "t2-v2")  # the rebuilt one with its source
    assert await s.count_by_version() == {"v1": 2}
    assert not await s.add_derived(rebuilt, "t2", KeptImage(b"\x89PNG-bob", None))  # its source is gone
    assert await s.erase("ann") and [m.template_id async for m, _ in s.kept_images()] == []  # erased with ann


def _card(tmp_path: Path, version: str, reads: list[str]) -> Path:
    return card_variant(tmp_path / version, version=version, reads_templates_of=reads)


@pytest.mark.slow
def test_reindex_while_serving_then_roll_out_the_new_version(postgres: Any, tmp_path: Path,
                                                             png_prints: list[list[bytes]]) -> None:
    url = postgres.create_database(f"u_{uuid.uuid4().hex[:12]}")
    key = tmp_path / "key.json"
    TemplateCipher.new_key_file(key, "k1")
    old, new = _card(tmp_path, "7.0.0", []), _card(tmp_path, "7.1.0", [])  # 7.1 cannot read 7.0's templates
    env = {"DATABASE_URL": url, "TEMPLATE_KEY_FILE": str(key), "KEEP_ENROLLMENT_IMAGES": "true"}
    a = Server(tmp_path / "a", WEIGHTS_PATH=str(old), **env)
    b = None
    try:
        a.wait_ready()
        for n, finger in enumerate(png_prints):
            r = httpx.post(a.url + "/api/v1/fingerprint/enroll", timeout=60,
                           json={"image": base64.b64encode(finger[0]).decode(), "subject_id": f"s{n}"})
            assert r.status_code == 201, r.text

        served: Counter[int] = Counter()
        stop = threading.Event()

        def traffic() -> None:  # identify on the serving replica for as long as the reindex runs
            probe = base64.b64encode(png_prints[0][1]).decode()
            while not stop.is_set():
                served[httpx.post(a.url + "/api/v1/fingerprint/identify", json={"image": probe}, timeout=60).status_code] += 1

        thread = threading.Thread(target=traffic)
        thread.start()
        cli = subprocess.run([sys.executable, "-m", "fingerprint.cli", "gallery", "reindex", "--weights", str(new)],
                             env={"PATH": "/usr/bin:/bin", **env, "DATA_DIR": str(tmp_path / "cli")},
                             capture_output=True, text=True, timeout=600)
        stop.set()
        thread.join()
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout.splitlines()[-1])["built"] == len(png_prints)
        assert set(served) == {200} and served[200] >= 1  # the current model served throughout
        status = httpx.get(a.url + "/api/v1/status", timeout=10).json()
        assert status["gallery"]["templates_by_version"] == {"7.0.0": 4, "7.1.0": 4}  # the rebuild's progress
        rerun = subprocess.run([sys.executable, "-m", "fingerprint.cli", "gallery", "reindex", "--weights", str(new)],
                               env={"PATH": "/usr/bin:/bin", **env, "DATA_DIR": str(tmp_path / "cli")},
                               capture_output=True, text=True, timeout=600)
        assert json.loads(rerun.stdout.splitlines()[-1])["already_built"] == len(png_prints)  # resumable

        # the rollout: a replica with the new weights serves every subject at once, nobody re-enrolls
        b = Server(tmp_path / "b", WEIGHTS_PATH=str(new), **env)
        b.wait_ready()
        assert httpx.get(b.url + "/api/v1/models/status", timeout=10).json()["model_version"] == "7.1.0"
        for n, finger in enumerate(png_prints):  # the ranking, not the decision: every subject is searchable
            r = httpx.post(b.url + "/api/v1/fingerprint/identify", timeout=60,
                           json={"image": base64.b64encode(finger[1]).decode(), "threshold": 0.0})
            assert r.json()["candidates"][0]["subject_id"] == f"s{n}", r.text
        a.stop()
        # erasure reaches every version's template and the kept images
        assert httpx.delete(b.url + "/api/v1/subjects/s1", timeout=30).json()["erased_templates"] == 2
        assert httpx.get(b.url + "/api/v1/status", timeout=10).json()["gallery"]["templates_by_version"] == {
            "7.0.0": 3, "7.1.0": 3}
    finally:
        a.stop()
        if b is not None:
            b.stop()
