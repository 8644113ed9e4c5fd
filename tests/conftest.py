"""Shared fixtures: synthetic fingerprint images made by the project's own generator, and apps."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image

from fingerprint.app import create_app
from fingerprint.service import EmbedderFactory, load_torch_embedder
from fingerprint.settings import Settings
from lab.synth.export import encode_png, synthetic_impressions

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fingerprints"


@pytest.fixture(scope="session")
def prints() -> list[list[np.ndarray]]:
    """Four synthetic fingers x three impressions each (uint8 arrays, 400x400, 500 dpi)."""
    return synthetic_impressions([11, 22, 33, 44], impressions=3, seed=7)


@pytest.fixture(scope="session")
def png_prints(prints: list[list[np.ndarray]]) -> list[list[bytes]]:
    return [[encode_png(img) for img in finger] for finger in prints]


def image_bytes(arr: np.ndarray, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def copy_weights(target: Path) -> None:
    """The bundled network at `target`, with the LEADER weights its card names beside it (not its card)."""
    from fingerprint.model.weights import DEFAULT_WEIGHTS, leader_path, probe_minutiae_path

    shutil.copy(DEFAULT_WEIGHTS, target)
    shutil.copy(leader_path(DEFAULT_WEIGHTS), leader_path(target))
    shutil.copy(probe_minutiae_path(DEFAULT_WEIGHTS), probe_minutiae_path(target))


def card_variant(folder: Path, **changes: object) -> Path:
    """The bundled network in `folder` (which must not exist yet) under a card with `changes` (e.g. another
    version, what it reads, no LEADER): the real model, told to be another version."""
    import json

    from fingerprint.model.weights import DEFAULT_WEIGHTS, meta_path

    folder.mkdir(parents=True)
    target = folder / "w.pt"
    copy_weights(target)
    meta_path(target).write_text(json.dumps({**json.loads(meta_path(DEFAULT_WEIGHTS).read_text()), **changes}))
    return target


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Test settings: deadlines generous enough that a busy machine cannot turn a slow extraction (LEADER,
    ~1 s per print on one free core) into a 504; tests of the deadlines set their own."""
    generous = {"feature_extraction_timeout": 60.0, "request_timeout": 120.0}
    return Settings(data_dir=tmp_path / "data").with_overrides(**{**generous, **overrides})


async def wait_ready(client: AsyncTestClient[Litestar], timeout: float = 30.0) -> None:
    for _ in range(int(timeout * 20)):
        r = await client.get("/api/v1/models/status")
        if r.status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not ready: {r.text}")


AppClient = Callable[..., AsyncIterator[AsyncTestClient[Litestar]]]


@pytest.fixture
def app_client(tmp_path: Path) -> Callable[..., object]:
    """`async with app_client(**settings) as client:` a ready app on a fresh gallery."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(embedder_factory: EmbedderFactory = load_torch_embedder, ready: bool = True,
                   **overrides: object) -> AsyncIterator[AsyncTestClient[Litestar]]:
        app = create_app(make_settings(tmp_path, **overrides), embedder_factory)
        async with AsyncTestClient(app=app) as client:
            if ready:
                await wait_ready(client)
            yield client

    return make


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A free port whose next one is free too: a benchmark's server listens on PORT and METRICS_PORT = PORT + 1."""
    import socket

    while True:
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


@pytest.fixture
def live_server(tmp_path: Path) -> Callable[..., object]:
    """`async with live_server(**settings) as (client, app):` uvicorn on a free loopback port, in this loop.

    Real HTTP with real concurrency (the in-process test client serialises requests).
    """
    from contextlib import asynccontextmanager

    import httpx
    import uvicorn

    @asynccontextmanager
    async def make(embedder_factory: EmbedderFactory = load_torch_embedder,
                   **overrides: object) -> AsyncIterator[tuple[httpx.AsyncClient, Litestar]]:
        port = free_port()
        app = create_app(make_settings(tmp_path, port=port, **overrides), embedder_factory)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
        task = asyncio.create_task(server.serve())
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for _ in range(600):
                    try:
                        if (await client.get("/api/v1/models/status")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
                yield client, app
        finally:
            server.should_exit = True
            await task

    return make


@pytest.fixture(scope="session")
def postgres() -> object:
    from tests.pg import PostgresServer

    server = PostgresServer()
    server.start()
    yield server
    server.destroy()
