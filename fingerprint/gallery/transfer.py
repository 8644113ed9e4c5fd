"""Copying a gallery between deployments, or between SQLite and PostgreSQL: `fingerprint gallery
export FILE` / `import FILE`.

The file is JSON lines, written and read a line at a time: a header (format, when, the model versions
and key ids it holds), one line per template with its bytes exactly as stored (still sealed, base64),
and a trailer with the count, so a truncated copy is refused. Import opens every template before
writing any (a file sealed under a key TEMPLATE_KEY_FILE does not hold is refused whole), stores each
under the importing gallery's active key, and skips template ids it already holds (run it again after
an interruption). On PostgreSQL every running replica picks the templates up through the change log.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fingerprint.gallery.codec import EmbeddingCodec
from fingerprint.gallery.store import GalleryStore, KeptImage, Template, TemplateMeta
from fingerprint.security.template_cipher import CipherError, sealed_key_id

FORMAT = "fingerprint-gallery"
VERSION = 1


class TransferError(Exception):
    """The file cannot be imported as it is (nothing was written)."""


@dataclass(frozen=True)
class Imported:
    stored: int
    skipped: int  # already in the gallery
    versions: dict[str, int]


def _key_id(blob: bytes) -> str:
    return sealed_key_id(blob) or "(plain)"


async def export_gallery(store: GalleryStore, out: IO[str], progress: Callable[[int], None] = lambda n: None) -> int:
    """Write every stored template to `out`; how many were written."""
    versions: Counter[str] = Counter(await store.count_by_version())
    out.write(json.dumps({"format": FORMAT, "version": VERSION, "exported_at": datetime.now(UTC).isoformat(),
                          "model_versions": dict(versions)}) + "\n")
    count = 0
    keys: Counter[str] = Counter()
    async for row in store.iter_rows():
        meta = row.meta
        keys[_key_id(row.template)] += 1
        line: dict[str, Any] = {
            "template_id": meta.template_id, "subject_id": meta.subject_id, "finger": meta.finger,
            "model_version": meta.model_version, "quality": meta.quality, "nfiq2": meta.nfiq2,
            "source_id": meta.source_id, "created_at": meta.created_at.isoformat(),
            "template": base64.b64encode(row.template).decode()}
        if row.image is not None:  # the kept enrolment image, still sealed: the next model can rebuild from it
            line |= {"image": base64.b64encode(row.image).decode(), "image_dpi": row.image_dpi}
        out.write(json.dumps(line) + "\n")
        count += 1
        progress(count)
    out.write(json.dumps({"end": True, "templates": count, "key_ids": dict(keys)}) + "\n")
    return count


def _rows(path: Path) -> tuple[dict[str, Any], int]:
    """The header and the number of template lines, after checking the file is whole."""
    with path.open() as f:
        try:
            header = json.loads(f.readline())
        except json.JSONDecodeError:
            header = {}
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise TransferError(f"{path} is not a gallery export (format {FORMAT} {VERSION})")
        count, last = 0, None
        for line in f:
            last = json.loads(line)
            count += "template_id" in last
    if not last or not last.get("end") or last.get("templates") != count:
        raise TransferError(f"{path} is truncated: its trailer is missing or does not match its {count} templates")
    return header, count


def _template(row: dict[str, Any], codec: EmbeddingCodec) -> tuple[Template, KeptImage | None]:
    meta = TemplateMeta(row["template_id"], row["subject_id"], row["finger"], row["model_version"], float(row["quality"]),
                        datetime.fromisoformat(row["created_at"]), row.get("nfiq2"), row.get("source_id"))
    blob = base64.b64decode(row["template"])
    image = None
    if row.get("image"):
        image = KeptImage(codec.open_image(meta.template_id, base64.b64decode(row["image"])), row.get("image_dpi"))
    # a plain row from a gallery that sealed nothing is sealed on its way in: the operator chose this file
    return Template(meta, *codec.decode(meta.template_id, blob, allow_plain=True)), image


async def import_gallery(store: GalleryStore, path: Path, progress: Callable[[int], None] = lambda n: None) -> Imported:
    _, count = _rows(path)
    codec = store.codec
    unreadable: Counter[str] = Counter()
    with path.open() as f:  # every template must open before any is written
        next(f)
        for line in f:
            row = json.loads(line)
            if "template_id" in row:
                try:
                    _template(row, codec)
                except (CipherError, ValueError) as exc:
                    unreadable[_key_id(base64.b64decode(row["template"])) if isinstance(exc, CipherError) else "corrupt"] += 1
    if unreadable:
        raise TransferError(f"{sum(unreadable.values())} of {count} templates cannot be opened here (by key id: "
                            f"{dict(unreadable)}): set TEMPLATE_KEY_FILE to a key file holding the keys they were sealed with")
    stored = skipped = 0
    versions: Counter[str] = Counter()
    with path.open() as f:
        next(f)
        for line in f:
            row = json.loads(line)
            if "template_id" not in row:
                continue
            if await store.add_if_absent(*_template(row, codec)):
                stored += 1
                versions[row["model_version"]] += 1
            else:
                skipped += 1
            progress(stored + skipped)
    return Imported(stored, skipped, dict(versions))
