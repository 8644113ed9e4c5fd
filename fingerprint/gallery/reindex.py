"""`fingerprint gallery reindex --weights NEW`: a new model version's templates, built from the kept
enrolment images (KEEP_ENROLLMENT_IMAGES) while the current model goes on serving.

Each rebuilt template is stored beside its source, under the new version, with a derived id
(re-running skips what is built: the command resumes) and linked to its source, so erasing either the
subject or the source template erases it too. Serving replicas do not read another version's templates:
they count them (`/api/v1/status`, `gallery.templates_by_version`) until a replica with the new
weights starts and serves them all at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fingerprint.gallery.store import GalleryStore, Template, TemplateMeta
from fingerprint.model.decode import ImageRejected
from fingerprint.model.embedder import Embedder

_IDS = uuid.UUID("5b6c2f0e-8d7a-4e51-9a43-3f1c0b2d7e90")  # namespace of rebuilt templates' ids


@dataclass(frozen=True)
class Reindexed:
    version: str
    built: int
    already: int  # built by an earlier run
    unusable: int  # kept images the new model refuses (logged by id, never by content)
    gone: int  # erased while being rebuilt


def rebuilt_id(source_id: str, version: str) -> str:
    return str(uuid.uuid5(_IDS, f"{source_id}:{version}"))


async def reindex(store: GalleryStore, embedder: Embedder, progress: Callable[[Reindexed, str | None], None]
                  = lambda r, t: None) -> Reindexed:
    version = embedder.meta.version
    built = already = unusable = gone = 0
    async for meta, image in store.kept_images():
        if meta.model_version == version:
            continue
        root = meta.source_id or meta.template_id  # a rebuilt template's own rebuild points at the original
        new_id = rebuilt_id(root, version)
        if await store.template(new_id) is not None:
            already += 1
            continue
        failed = None
        try:
            prepared = await asyncio.to_thread(embedder.preprocess, image.data, image.dpi)
            (emb,) = await asyncio.to_thread(embedder.embed, [prepared])
        except ImageRejected as exc:
            unusable += 1
            failed = meta.template_id
            progress(Reindexed(version, built, already, unusable, gone), f"{failed}: {exc.code}")
            continue
        template = Template(TemplateMeta(new_id, meta.subject_id, meta.finger, version, prepared.quality, meta.created_at,
                                         meta.nfiq2), emb.views[0], emb.dense, emb.minutiae)
        if await store.add_derived(template, root, image):
            built += 1
        else:
            gone += 1
        progress(Reindexed(version, built, already, unusable, gone), None)
    return Reindexed(version, built, already, unusable, gone)
