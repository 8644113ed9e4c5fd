"""Score checksum: fixed synthetic prints give exactly these verify scores through the service with the
bundled model (float32, one thread, LEADER on every probe). A change to preprocessing, the network, the
comparator or the index that moves any served score fails here; a deliberate one updates the table with
the model card. With fast probes (the default) each score is LEADER's unless it clears FAST_ACCEPT x the
threshold or stays below FAST_REJECT x it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fingerprint.gallery.sqlite_store import SqliteStore
from fingerprint.service import FingerprintService
from fingerprint.settings import Settings
from fingerprint.telemetry.metrics import Telemetry

# (finger, impression) -> scores against the enrolled first impressions of fingers 0-3
EXPECTED = {
    (0, 1): (0.125429, 0.052076, 0.043109, 0.058073),
    (0, 2): (0.109583, 0.052696, 0.045813, 0.057929),
    (1, 1): (0.043144, 0.171483, 0.047227, 0.060303),
    (1, 2): (0.042632, 0.118977, 0.041431, 0.052389),
    (2, 1): (0.041941, 0.048558, 0.056770, 0.042424),
    (2, 2): (0.039986, 0.042116, 0.128617, 0.039691),
    (3, 1): (0.046808, 0.052632, 0.040624, 0.114249),
    (3, 2): (0.046576, 0.060996, 0.040565, 0.146980),
}


def _settings(tmp_path: Path, fast_probes: bool, fast_reject: float = 0.0) -> Settings:
    # scores, not speed: generous deadlines, so a busy machine cannot turn this into a timeout
    return Settings(data_dir=tmp_path, inference_precision="float32", torch_threads=1, score_decimals=6,
                    feature_extraction_timeout=120.0, request_timeout=300.0, fast_probes=fast_probes,
                    fast_reject=fast_reject)


async def test_served_scores_match_the_checksum(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    store = SqliteStore(tmp_path / "g.sqlite3")
    await store.open()
    service = FingerprintService(_settings(tmp_path, fast_probes=False), store, Telemetry("t", "t"))
    await service.load()
    try:
        for n, finger in enumerate(png_prints):
            await service.enroll(finger[0], 500.0, f"s{n}", None)
        for (n, i), expected in EXPECTED.items():
            got = [(await service.verify(png_prints[n][i], 500.0, f"s{m}")).score for m in range(4)]
            assert got == pytest.approx(expected, abs=2e-4), (n, i)
            ranked = (await service.identify(png_prints[n][i], 500.0, 4, 0.0)).candidates
            assert [c.score for c in ranked] == sorted(got, reverse=True)  # identify scores as verify does
        await service.stop()
        # the same gallery with fast probes, no FAST_REJECT: a score that does not clear FAST_ACCEPT x the
        # threshold is LEADER's, exactly; the impostors' all are, and some genuine pair is answered fast
        service = FingerprintService(_settings(tmp_path, fast_probes=True), store, Telemetry("t", "t"))
        await service.load()
        clear = service.settings.fast_accept * service.decision_threshold().value
        fast_answers = 0
        for (n, i), expected in EXPECTED.items():
            for m in range(4):
                got = (await service.verify(png_prints[n][i], 500.0, f"s{m}")).score
                if got != pytest.approx(expected[m], abs=2e-4):
                    assert n == m and got >= clear, (n, i, m, got)
                    fast_answers += 1
                elif n != m:
                    assert expected[m] < clear
        assert fast_answers > 0
        counted = [line for line in service.telemetry.exposition().decode().splitlines()
                   if line.startswith("fingerprint_probes_refined_total")]
        assert counted and float(counted[0].split()[-1]) == 4 * len(EXPECTED) - fast_answers  # each LEADER one
        await service.stop()
        # again with FAST_REJECT: a score between FAST_REJECT and FAST_ACCEPT x the threshold is
        # LEADER's, exactly; some genuine pair is answered by the fast network, and (FAST_REJECT 0.6 puts
        # these impostors' ~0.04-0.06 about its edge) some impostor pairs are, others not
        service = FingerprintService(_settings(tmp_path, fast_probes=True, fast_reject=0.6), store, Telemetry("t", "t"))
        await service.load()
        clear = service.settings.fast_accept * service.decision_threshold().value
        rejected = 0.6 * service.decision_threshold().value
        fast_answers = fast_rejects = leaders_impostors = undecided = 0
        for (n, i), expected in EXPECTED.items():
            for m in range(4):
                got = (await service.verify(png_prints[n][i], 500.0, f"s{m}")).score
                undecided += rejected <= got < clear  # no fast answer can stand there: LEADER gave it
                if got != pytest.approx(expected[m], abs=2e-4):
                    assert (n == m and got >= clear) or got < rejected, (n, i, m, got)
                    fast_answers += 1
                    fast_rejects += got < rejected
                elif n != m:
                    assert expected[m] < clear
                    leaders_impostors += 1
        assert fast_answers > fast_rejects > 0 and leaders_impostors > 0
        counted = [line for line in service.telemetry.exposition().decode().splitlines()
                   if line.startswith("fingerprint_probes_refined_total")]
        # each LEADER one: at least every score left between the margins, at most every score that is LEADER's
        # (a fast answer may equal LEADER's)
        assert undecided > 0
        assert counted and undecided <= float(counted[0].split()[-1]) <= 4 * len(EXPECTED) - fast_answers
    finally:
        await service.stop()
        await store.close()
