"""The bounded queue refuses at once when full; expired stages answer 504 naming the stage."""

from __future__ import annotations

import asyncio
import base64
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from fingerprint.model.embedder import Embedder, Embedding, LeaderSource, PreparedImage
from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.weights import DEFAULT_WEIGHTS, ModelMeta, meta_path
from fingerprint.service import load_torch_embedder
from fingerprint.settings import Settings
from tests.conftest import copy_weights


class SlowEmbedder:
    """The real embedder with added latency, to hold the pipeline busy (plumbing tests only)."""

    def __init__(self, inner: Embedder, preprocess_delay: float = 0.0, embed_delay: float = 0.0) -> None:
        self.inner = inner
        self.preprocess_delay = preprocess_delay
        self.embed_delay = embed_delay
        self.embedded = 0
        # set by a test: the next forward pass waits (up to 30 s) until this holds, so an ordering the
        # test needs does not depend on how fast the machine is
        self.hold_until: Callable[[], bool] | None = None
        self.in_forward_pass = threading.Event()

    @property
    def meta(self) -> ModelMeta:
        return self.inner.meta

    @property
    def precision(self) -> str:
        return self.inner.precision

    @property
    def distinct_probe_minutiae(self) -> bool:
        return self.inner.distinct_probe_minutiae

    def preprocess(self, data: bytes, dpi: float | None, probe: bool = False) -> PreparedImage:
        time.sleep(self.preprocess_delay)
        return self.inner.preprocess(data, dpi)

    def refine(self, minutiae: MinutiaeTemplate, source: LeaderSource) -> MinutiaeTemplate:
        return self.inner.refine(minutiae, source)

    def embed(self, batch: list[PreparedImage]) -> list[Embedding]:
        hold, self.hold_until = self.hold_until, None
        self.in_forward_pass.set()
        give_up = time.monotonic() + 30
        while hold is not None and not hold() and time.monotonic() < give_up:
            time.sleep(0.01)
        time.sleep(self.embed_delay)
        self.embedded += len(batch)
        return self.inner.embed(batch)


def slow(preprocess_delay: float = 0.0, embed_delay: float = 0.0) -> Callable[[Settings], SlowEmbedder]:
    holder: dict[str, SlowEmbedder] = {}

    def factory(settings: Settings) -> SlowEmbedder:
        holder["e"] = SlowEmbedder(load_torch_embedder(settings), preprocess_delay, embed_delay)
        return holder["e"]

    factory.holder = holder  # type: ignore[attr-defined]
    return factory


def _body(image: bytes) -> dict[str, Any]:
    return {"json": {"image": base64.b64encode(image).decode(), "threshold": 0.0}}


async def test_queue_full_is_rejected_at_once_with_retry_after(live_server: Callable[..., Any],
                                                               png_prints: list[list[bytes]]) -> None:
    async with live_server(embedder_factory=slow(embed_delay=1.5), max_pool_size=2, max_batch_size=1) as (c, app):
        busy = [asyncio.ensure_future(c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0])))
                for _ in range(2)]
        await asyncio.sleep(0.2)
        r = await c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0]))
        assert not all(b.done() for b in busy)  # refused while capacity was still taken, not after
        assert r.status_code == 503 and r.json()["error"]["code"] == "queue_full"
        assert r.headers["retry-after"] == "1"
        assert [x.status_code for x in await asyncio.gather(*busy)] == [200, 200]
        metrics = app.state.telemetry.exposition().decode()
        assert 'fingerprint_rejections_total{' in metrics and 'reason="queue_full"' in metrics
        status = (await c.get("/api/v1/status")).json()
        assert status["queue"] == {"depth": 0, "capacity": 2, "max_capacity": 2}


async def test_feature_extraction_deadline(app_client: Callable[..., Any], png_prints: list[list[bytes]]) -> None:
    async with app_client(embedder_factory=slow(preprocess_delay=0.6), feature_extraction_timeout=0.2) as c:
        r = await c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0]))
        assert r.status_code == 504 and r.json()["error"]["code"] == "feature_extraction_timeout"


async def test_inference_deadline_drops_work_before_the_forward_pass(live_server: Callable[..., Any],
                                                                      png_prints: list[list[bytes]]) -> None:
    factory = slow(embed_delay=0.5)
    async with live_server(embedder_factory=factory, inference_timeout=0.2, max_batch_size=1) as (c, app):
        embedder = factory.holder["e"]  # type: ignore[attr-defined]
        batcher = app.state.service.pipeline.batcher
        # the first request holds the model until the second is queued behind it, then 0.5 s more: the
        # second's 0.2 s inference budget runs out while it waits, however long extraction took
        embedder.hold_until = lambda: batcher.pending >= 1
        before = embedder.embedded
        embedder.in_forward_pass.clear()
        first = asyncio.ensure_future(c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0])))
        await asyncio.wait_for(asyncio.to_thread(embedder.in_forward_pass.wait), timeout=60)
        r = await c.post("/api/v1/fingerprint/identify", **_body(png_prints[1][0]))
        assert r.status_code == 504 and r.json()["error"]["code"] == "inference_timeout"
        await first
        await asyncio.sleep(0.6)
        assert embedder.embedded - before == 1  # the expired request never reached the model


async def test_request_deadline(app_client: Callable[..., Any], png_prints: list[list[bytes]]) -> None:
    async with app_client(embedder_factory=slow(preprocess_delay=0.4), request_timeout=0.2) as c:
        r = await c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0]))
        assert r.status_code == 504 and r.json()["error"]["code"] == "request_timeout"


async def test_a_stalled_quality_score_ends_enrolment_at_the_deadline(app_client: Callable[..., Any],
                                                                       png_prints: list[list[bytes]],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """NFIQ 2 runs beside the extraction on a thread of its own: if it never returns, enroll still answers
    at the request deadline and stores nothing."""
    release = threading.Event()

    def stalled(*args: object) -> int:
        release.wait(60)
        return 50

    monkeypatch.setattr("fingerprint.enrolment.nfiq2_score", stalled)
    factory = slow()
    async with app_client(embedder_factory=factory, request_timeout=8.0) as c:
        try:
            image = base64.b64encode(png_prints[0][0]).decode()
            r = await c.post("/api/v1/fingerprint/enroll", json={"image": image, "subject_id": "s1"})
        finally:
            release.set()
        assert r.status_code == 504 and r.json()["error"]["code"] == "request_timeout"
        assert factory.holder["e"].embedded == 1  # extracted in time: NFIQ 2 was what ran out of it
        assert len(c.app.state.service.index) == 0


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
async def test_model_load_failure_keeps_liveness_and_reports_unready(app_client: Callable[..., Any], tmp_path: Any,
                                                                      damage: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "w.pt"
    if damage == "corrupt":
        copy_weights(weights)
        shutil.copy(meta_path(DEFAULT_WEIGHTS), meta_path(weights))
        weights.write_bytes(weights.read_bytes()[:-1000] + b"\x00" * 1000)
    async with app_client(weights_path=weights, ready=False) as c:
        for _ in range(100):
            r = await c.get("/api/v1/models/status")
            if r.json()["error"]["code"] != "model_loading":
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
        assert (await c.get("/health")).status_code == 200
        r = await c.post("/api/v1/fingerprint/identify", json={"image": "aGk="})
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
        metrics = c.app.state.telemetry.exposition().decode()
        assert "fingerprint_model_load_failures_total" in metrics
        assert "fingerprint_model_loaded 0.0" in metrics
    log_lines = [line for line in capsys.readouterr().out.splitlines() if "model load failed" in line]
    assert log_lines and '"log.level":"error"' in log_lines[0]


SEARCH_SECONDS = 5.0  # long beside an extraction (LEADER's ~0.5-1 s), so the queue, not extraction, decides
DEADLINE_SECONDS = 15.0  # far above three extractions sharing two busy cores; the held searches never end by it


async def test_gallery_search_is_inside_the_queue_bound_and_the_request_deadline(
        live_server: Callable[..., Any], png_prints: list[list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow search holds its request's slot: overload is refused at the door, not queued behind it;
    a search that outlives the request deadline answers 504 instead of hanging."""
    from fingerprint.gallery.index import GalleryIndex

    real_search = GalleryIndex.search_views
    searching = threading.Event()
    release = threading.Event()
    searches = 0

    def slow_search(self: GalleryIndex, *args: Any) -> Any:
        searching.set()
        time.sleep(SEARCH_SECONDS)
        return real_search(self, *args)

    def first_search_only(self: GalleryIndex, *args: Any) -> Any:
        # the first search answers at once; the rest are held until the test ends, so which request
        # meets the deadline depends on the queue, not on how fast this machine extracts today
        nonlocal searches
        searches += 1
        if searches > 1:
            release.wait(60)
        return real_search(self, *args)

    monkeypatch.setattr(GalleryIndex, "search_views", slow_search)
    # LEADER on every probe: a fast probe with no mate in this empty gallery is searched twice
    async with live_server(max_pool_size=1, request_timeout=60.0, fast_probes=False) as (c, _):
        busy = asyncio.ensure_future(c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0])))
        while not searching.is_set():  # extracted and embedded: it is searching, holding the one slot
            await asyncio.sleep(0.02)
        r = await c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0]))
        assert r.status_code == 503 and r.json()["error"]["code"] == "queue_full"
        assert (await busy).status_code == 200
    monkeypatch.setattr(GalleryIndex, "search_views", first_search_only)
    # three searches on the one search thread: the first answers, the second is held past the
    # deadline and the third waits behind it for the thread; both must end as 504 at the deadline
    async with live_server(max_pool_size=4, request_timeout=DEADLINE_SECONDS, fast_probes=False) as (c, _):
        started = time.perf_counter()
        try:
            three = await asyncio.gather(*(c.post("/api/v1/fingerprint/identify", **_body(png_prints[0][0]))
                                           for _ in range(3)))
            waited = time.perf_counter() - started
        finally:
            release.set()  # before the server stops: its shutdown waits for the search thread
        assert sorted(r.status_code for r in three) == [200, 504, 504]
        assert all(r.json()["error"]["code"] == "request_timeout" for r in three if r.status_code == 504)
        assert waited < DEADLINE_SECONDS + 10  # answered at the deadline, not after the held search
