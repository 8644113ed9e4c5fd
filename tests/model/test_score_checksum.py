"""Score checksum: fixed synthetic prints give exactly these verify scores through the service with the
bundled model (float32, one thread). A change to preprocessing, the network, the comparator or the
index that moves any served score fails here; a deliberate one updates the table with the model card."""

from __future__ import annotations

from pathlib import Path

import pytest

from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.service import FingerprintService
from fingerprint.settings import Settings
from fingerprint.telemetry.metrics import Telemetry

# (finger, impression) -> scores against the enrolled first impressions of fingers 0-3
EXPECTED = {
    (0, 1): (0.132343, 0.115141, 0.099538, 0.117085),
    (0, 2): (0.175642, 0.120064, 0.107185, 0.124226),
    (1, 1): (0.103253, 0.201555, 0.106540, 0.124817),
    (1, 2): (0.097040, 0.191053, 0.095322, 0.114849),
    (2, 1): (0.099678, 0.098827, 0.134421, 0.098126),
    (2, 2): (0.092888, 0.092893, 0.169134, 0.090160),
    (3, 1): (0.112551, 0.116978, 0.094838, 0.182883),
    (3, 2): (0.112385, 0.129049, 0.093907, 0.188995),
}


async def test_served_scores_match_the_checksum(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    store = SqliteStore(tmp_path / "g.sqlite3")
    await store.open()
    settings = Settings(data_dir=tmp_path, inference_precision="float32", torch_threads=1, score_decimals=6)
    service = FingerprintService(settings, store, Telemetry("t", "t"))
    await service.load()
    try:
        for n, finger in enumerate(png_prints):
            await service.enroll(finger[0], 500.0, f"s{n}", None)
        for (n, i), expected in EXPECTED.items():
            got = [(await service.verify(png_prints[n][i], 500.0, f"s{m}")).score for m in range(4)]
            assert got == pytest.approx(expected, abs=2e-4), (n, i)
            ranked = (await service.identify(png_prints[n][i], 500.0, 4, 0.0)).candidates
            assert [c.score for c in ranked] == sorted(got, reverse=True)  # identify scores as verify does
    finally:
        await service.stop()
        await store.close()
