"""fingerprint.client against a real server process, and its retry policy against a scripted transport."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from fingerprint.client import AsyncClient, Client, FingerprintError
from tests.conftest import image_bytes
from tests.process import Server


@pytest.mark.slow
def test_the_client_enrolls_verifies_identifies_lists_and_erases(tmp_path: Path,
                                                                 png_prints: list[list[bytes]]) -> None:
    import numpy as np

    server = Server(tmp_path)
    try:
        server.wait_ready()
        with Client(server.url) as fp:
            enrolled = fp.enroll(png_prints[0][0], "alice", finger="right_index", idempotency_key="enroll-alice-1")
            assert (enrolled.subject_id, enrolled.finger) == ("alice", "right_index")
            assert enrolled.nfiq2 is not None and 0 < enrolled.nfiq2 <= 100  # NFIQ 2 computed at enrolment
            # a retry after a lost answer: the first template, not a second one
            again = fp.enroll(png_prints[0][0], "alice", finger="right_index", idempotency_key="enroll-alice-1")
            assert again == enrolled
            with pytest.raises(FingerprintError) as reused:
                fp.enroll(png_prints[0][1], "alice", idempotency_key="enroll-alice-1")
            assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")
            extra = fp.enroll(png_prints[0][2], "alice")
            assert fp.minutiae(extra.template_id)[:8] == b"FMR\x00 20\x00"  # ISO/IEC 19794-2:2005
            assert fp.erase_template(extra.template_id).subject_id == "alice"
            fp.enroll(png_prints[1][0], "bob")
            verified = fp.verify(png_prints[0][1], "alice")
            assert verified.match and verified.template_id == enrolled.template_id
            found = fp.identify(png_prints[0][1], top_k=2, threshold=0.0)
            assert found.candidates[0].subject_id == "alice" and isinstance(found.candidates[0].score, float)
            assert [s.subject_id for s in fp.subjects(page_size=1)] == ["alice", "bob"]  # two pages followed
            with pytest.raises(FingerprintError) as refused:
                fp.verify(b"not an image", "alice")
            assert (refused.value.status, refused.value.code) == (422, "invalid_image")
            with pytest.raises(FingerprintError) as missing:
                fp.verify(png_prints[0][1], "nobody")
            assert missing.value.code == "subject_not_found"
            assert fp.erase("alice").erased_templates == 1

        async def from_async() -> list[str]:
            async with AsyncClient(server.url) as fp:
                wsq = image_bytes(np.asarray(_gray(png_prints[1][1])), "WSQ")
                hit = await fp.identify(wsq, top_k=1, threshold=0.0)
                return [c.subject_id for c in hit.candidates] + [s.subject_id async for s in fp.subjects()]

        assert asyncio.run(from_async()) == ["bob", "bob"]

        # the CLI's remote mode: the same commands and JSON as on the local gallery, through the client
        from click.testing import CliRunner

        from fingerprint.cli import main

        for n, image in enumerate((png_prints[2][0], png_prints[2][1])):
            (tmp_path / f"c{n}.png").write_bytes(image)
        runner = CliRunner()
        r = runner.invoke(main, ["enroll", str(tmp_path / "c0.png"), "--subject", "carol", "--url", server.url])
        assert r.exit_code == 0 and json.loads(r.stdout)[0]["template_id"], r.output
        r = runner.invoke(main, ["identify", str(tmp_path / "c1.png"), "--url", server.url, "--top-k", "1", "--threshold", "0"])
        assert r.exit_code == 0 and json.loads(r.stdout)["candidates"][0]["subject_id"] == "carol", r.output
        r = runner.invoke(main, ["verify", str(tmp_path / "c1.png"), "--subject", "nobody", "--url", server.url])
        assert r.exit_code == 1 and "subject_not_found" in r.output
    finally:
        server.stop()


def _gray(png: bytes) -> object:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("L")


def test_503_is_retried_as_asked_and_other_errors_are_raised_with_their_code() -> None:
    answers = [httpx.Response(503, headers={"retry-after": "0"}, json={"error": {"code": "queue_full", "message": "busy"}}),
               httpx.Response(200, json={"subject_id": "s", "erased_templates": 2})]
    calls: list[httpx.Request] = []

    def scripted(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answers.pop(0)

    with Client("http://fp", api_key="fpk_a_b", transport=httpx.MockTransport(scripted)) as fp:
        assert fp.erase("s").erased_templates == 2
    assert len(calls) == 2 and calls[0].headers["authorization"] == "Bearer fpk_a_b"

    always_busy = httpx.MockTransport(lambda _: httpx.Response(503, headers={"retry-after": "0"},
                                                               json={"error": {"code": "queue_full", "message": "x"}}))
    with Client("http://fp", retries=1, transport=always_busy) as fp, pytest.raises(FingerprintError) as busy:
        fp.erase("s")
    assert (busy.value.status, busy.value.code) == (503, "queue_full")
    no_retry = httpx.MockTransport(lambda _: httpx.Response(404, json={"error": {"code": "subject_not_found",
                                                                                 "message": "no"}}))
    with Client("http://fp", transport=no_retry) as fp, pytest.raises(FingerprintError) as gone:
        fp.erase("s")
    assert gone.value.code == "subject_not_found"
