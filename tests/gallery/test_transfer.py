"""`fingerprint gallery export` / `import`: SQLite <-> PostgreSQL with sealed templates, identify unchanged
(real server processes before and after)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from fingerprint.cli import main
from fingerprint.security.template_cipher import TemplateCipher
from tests.process import Server


def _cli(*args: str, **env: str) -> Any:
    base: dict[str, str | None] = {"DATA_DIR": None, "DATABASE_URL": None, "TEMPLATE_KEY_FILE": None}  # unset
    return CliRunner().invoke(main, list(args), env={**base, **env}, catch_exceptions=False)


def _scores(server: Server, probes: list[bytes]) -> list[list[tuple[str, float]]]:
    out = []
    for probe in probes:
        r = httpx.post(server.url + "/api/v1/fingerprint/identify", timeout=60,
                       files={"image": ("p", probe)}, data={"top_k": "4", "threshold": "0"})
        out.append([(x["subject_id"], x["score"]) for x in r.json()["candidates"]])
    return out


@pytest.mark.slow
def test_sqlite_to_postgres_and_back_keeps_every_template_and_every_score(
        png_prints: list[list[bytes]], postgres: Any, tmp_path: Path) -> None:
    old_key, new_key = tmp_path / "old.json", tmp_path / "new.json"
    TemplateCipher.new_key_file(old_key, "k2025")
    TemplateCipher.new_key_file(new_key, "k2026", previous=old_key)  # holds k2025 too; seals with k2026
    probes = [finger[1] for finger in png_prints]
    source = Server(tmp_path / "data", TEMPLATE_KEY_FILE=str(old_key), KEEP_ENROLLMENT_IMAGES="true")
    try:
        source.wait_ready()
        for n, finger in enumerate(png_prints):
            r = httpx.post(source.url + "/api/v1/fingerprint/enroll", timeout=60, files={"image": ("p", finger[0])},
                           data={"subject_id": f"p{n}", "finger": "left_index"})
            assert r.status_code == 201
        before = _scores(source, probes)
        listed = httpx.get(source.url + "/api/v1/subjects/p0").json()
    finally:
        source.stop()

    dump = tmp_path / "gallery.jsonl"
    r = _cli("gallery", "export", str(dump), DATA_DIR=str(tmp_path / "data"), TEMPLATE_KEY_FILE=str(old_key))
    assert r.exit_code == 0 and "exported 4 templates" in r.output, r.output
    lines = [json.loads(x) for x in dump.read_text().splitlines()]
    assert lines[0]["format"] == "fingerprint-gallery" and list(lines[0]["model_versions"].values()) == [4]
    assert lines[-1] == {"end": True, "templates": 4, "key_ids": {"k2025": 4}}  # still sealed, under the old key
    assert all(x["image"] and x["image_dpi"] is None for x in lines[1:-1])  # the kept images travel too, sealed
    assert oct(dump.stat().st_mode & 0o777) == "0o600"

    url = postgres.create_database(f"x_{uuid.uuid4().hex[:12]}")
    refused = _cli("gallery", "import", str(dump), DATABASE_URL=url)  # no key: the templates cannot be opened
    assert refused.exit_code == 1 and "k2025" in refused.output and "TEMPLATE_KEY_FILE" in refused.output
    r = _cli("gallery", "import", str(dump), DATABASE_URL=url, TEMPLATE_KEY_FILE=str(new_key))
    assert r.exit_code == 0 and json.loads(r.output)["stored"] == 4, r.output
    r = _cli("gallery", "import", str(dump), DATABASE_URL=url, TEMPLATE_KEY_FILE=str(new_key))
    assert json.loads(r.output) == {"stored": 0, "skipped": 4, "model_versions": {}}  # a re-run adds nothing

    target = Server(tmp_path / "unused", DATABASE_URL=url, TEMPLATE_KEY_FILE=str(new_key))
    try:
        target.wait_ready()
        assert _scores(target, probes) == before  # the same templates: the same candidates and scores
        assert httpx.get(target.url + "/api/v1/subjects/p0").json() == listed  # metadata too (finger, NFIQ 2, dates)
    finally:
        target.stop()

    back = tmp_path / "back.jsonl"
    r = _cli("gallery", "export", str(back), DATABASE_URL=url, TEMPLATE_KEY_FILE=str(new_key))
    back_lines = [json.loads(x) for x in back.read_text().splitlines()]
    assert back_lines[-1]["key_ids"] == {"k2026": 4}  # re-sealed on import
    assert all(x["image"] for x in back_lines[1:-1])  # a later `gallery reindex` on PostgreSQL has its images
    r = _cli("gallery", "import", str(back), DATA_DIR=str(tmp_path / "again"), TEMPLATE_KEY_FILE=str(new_key))
    assert json.loads(r.output)["stored"] == 4


def test_a_truncated_or_foreign_file_writes_nothing(tmp_path: Path) -> None:
    dump = tmp_path / "cut.jsonl"
    dump.write_text(json.dumps({"format": "fingerprint-gallery", "version": 1, "model_versions": {}}) + "\n"
                    + json.dumps({"template_id": "t", "template": ""}) + "\n")
    r = _cli("gallery", "import", str(dump), DATA_DIR=str(tmp_path / "g"))
    assert r.exit_code == 1 and "truncated" in r.output
    dump.write_text("not json\n")
    r = _cli("gallery", "import", str(dump), DATA_DIR=str(tmp_path / "g"))
    assert r.exit_code == 1 and "not a gallery export" in r.output
