"""A client that hangs up never leaves half-done work: a committed enroll is indexed and audited as done."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fingerprint.api.disconnect import ClientGone, unless_disconnected
from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.gallery.store import IdempotencyClaim, KeptImage, Template
from fingerprint.service import FingerprintService
from fingerprint.settings import Settings
from fingerprint.telemetry.metrics import Telemetry
from tests.process import Server


class _HeldStore(SqliteStore):
    """SQLite whose commit waits for the test: the client hangs up while the row is being written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def add(self, template: Template, claim: IdempotencyClaim | None = None, image: KeptImage | None = None) -> int:
        self.writing.set()
        await self.release.wait()
        return await super().add(template, claim, image)


class _Request:
    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}


@pytest.fixture
async def held(tmp_path: Path) -> AsyncIterator[tuple[_HeldStore, FingerprintService]]:
    """A ready service on the real model whose store's commit waits for the test."""
    store = _HeldStore(tmp_path / "g.sqlite3")
    await store.open()
    # what is tested is the hang-up, not speed: a busy machine must not turn the enrolment into a timeout
    service = FingerprintService(Settings(data_dir=tmp_path, feature_extraction_timeout=120.0, request_timeout=300.0),
                                 store, Telemetry("t", "t"))
    await service.load()
    yield store, service
    await service.stop()
    await store.close()


async def test_a_hang_up_during_the_commit_still_indexes_and_answers(
        held: tuple[_HeldStore, FingerprintService], png_prints: list[list[bytes]]) -> None:
    store, service = held
    request = _Request()
    work = asyncio.ensure_future(unless_disconnected(
        request, service.enroll(png_prints[0][0], 500.0, "alice", None)))  # type: ignore[arg-type]
    writing = asyncio.ensure_future(store.writing.wait())
    await asyncio.wait([writing, work], return_when=asyncio.FIRST_COMPLETED)
    assert writing.done(), f"the enrolment ended before its commit: {work.exception() if work.done() else work}"
    request.gone.set()  # the client hangs up while the template is being committed
    await asyncio.sleep(0.05)
    store.release.set()
    enrolled = await work  # the outcome stands: before, ClientGone and a template only a restart indexed
    assert service.index is not None and service.index.has_subject("alice")
    assert [t.template_id for t in await store.subject_templates("alice")] == [enrolled.template_id]


async def test_a_hang_up_before_the_commit_stores_nothing(
        held: tuple[_HeldStore, FingerprintService], png_prints: list[list[bytes]]) -> None:
    store, service = held
    request = _Request()
    request.gone.set()  # gone before the forward pass finished
    with pytest.raises(ClientGone):
        await unless_disconnected(request, service.enroll(png_prints[0][0], 500.0, "bob", None))  # type: ignore[arg-type]
    assert not store.writing.is_set() and await store.subject_templates("bob") == []


def _abandon(port: int, body: bytes, after: float) -> None:
    head = (f"POST /api/v1/fingerprint/enroll HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + body)
        s.settimeout(after)
        with contextlib.suppress(TimeoutError):
            s.recv(1)


@pytest.mark.slow
def test_abandoned_enrolls_on_a_real_server_are_all_or_nothing(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    server = Server(tmp_path / "data", LOG_LEVEL="INFO")
    server.wait_ready()
    rng = random.Random(28)
    subjects = [f"gone-{i}" for i in range(15)]
    for i, subject in enumerate(subjects):
        body = json.dumps({"image": base64.b64encode(png_prints[i % 4][0]).decode(), "subject_id": subject}).encode()
        _abandon(server.port, body, rng.uniform(0.02, 0.8))
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(100):  # let abandoned work finish
            if c.get("/api/v1/status").json()["queue"]["depth"] == 0:
                break
        stored = 0
        for i, subject in enumerate(subjects):
            in_store = c.get(f"/api/v1/subjects/{subject}").status_code == 200
            probe = {"image": base64.b64encode(png_prints[i % 4][1]).decode(), "subject_id": subject}
            in_index = c.post("/api/v1/fingerprint/verify", json=probe).status_code == 200
            assert in_store == in_index, subject  # committed means searchable, without a restart
            stored += in_store
    lines = [json.loads(x) for x in server.output().splitlines() if x.startswith("{")]
    assert not [x for x in lines if x.get("log.level") == "error"]
    statuses = [x["http"]["response"]["status_code"] for x in lines if x.get("message") == "request"]
    assert 500 not in statuses
    audits = [x for x in lines if x.get("message") == "audit" and x["event"]["action"] == "enroll"]
    assert sum(x["event"]["outcome"] == "success" for x in audits) == stored  # the audit trail tells the truth
    print({"abandoned": len(subjects), "committed": stored})
