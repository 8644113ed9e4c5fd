"""GET /api/v1/templates/{id}/minutiae: the model's minutiae as standard records, admin only, audited."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fingerprint.security.api_keys import append_record, new_key
from tests.api.test_endpoints import _multipart


async def test_a_template_exports_as_iso_ansi_and_json(app_client: Callable[..., Any], png_prints: list[list[bytes]],
                                                       tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "keys.json"
    keys = {}
    for name, scopes in {"admin": ["admin", "enroll"], "user": ["enroll", "verify", "identify"]}.items():
        keys[name], record = new_key(scopes, name=name)
        append_record(path, record)
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    async with app_client(api_keys_file=path) as c:
        r = await c.post("/api/v1/fingerprint/enroll", headers=admin,
                         **_multipart(png_prints[0][0], subject_id="eve", finger="right_index"))
        tid = r.json()["template_id"]
        url = f"/api/v1/templates/{tid}/minutiae"

        iso = await c.get(url, headers=admin)
        assert iso.status_code == 200 and iso.headers["content-type"] == "application/octet-stream"
        record = iso.content
        assert record[:8] == b"FMR\x00 20\x00" and struct.unpack_from(">I", record, 8)[0] == len(record)
        width, height, xres = struct.unpack_from(">HHH", record, 14)
        position, _, quality, count = struct.unpack_from(">BBBB", record, 24)
        assert (width, height, xres, position) == (400, 400, 197, 2) and 0 < quality <= 100

        doc = json.loads((await c.get(url, params={"format": "json"}, headers=admin)).content)
        assert len(doc["minutiae"]) == count >= 10 and doc["source"] == "leader"
        first = struct.unpack_from(">HHBB", record, 28)
        assert (first[0] & 0x3FFF, first[1] & 0x3FFF) == (doc["minutiae"][0]["x"], doc["minutiae"][0]["y"])

        ansi = (await c.get(url, params={"format": "ansi378"}, headers=admin)).content
        assert ansi[:8] == b"FMR\x00 20\x00" and struct.unpack_from(">H", ansi, 8)[0] == len(ansi) == len(record) + 2

        user = {"Authorization": f"Bearer {keys['user']}"}
        assert (await c.get(url, headers=user)).status_code == 403  # a biometric export is an admin's act
        assert (await c.get(url, params={"format": "xyz"}, headers=admin)).status_code == 400
        missing = await c.get("/api/v1/templates/00000000-0000-4000-8000-000000000000/minutiae", headers=admin)
        assert missing.json()["error"]["code"] == "template_not_found"
    audit = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"export_minutiae"' in line]
    assert audit and audit[0]["fingerprint"] == {"template_ids": [tid], "subject_ids": ["eve"]}
    assert record[28:60].hex() not in json.dumps(audit)  # the record itself is never logged
