"""Enrolment: one print extracted, checked against the quality floors and stored, at most once per
Idempotency-Key; the index learns of it only once it is durable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from fingerprint.batching.deadline import Deadline
from fingerprint.batching.pipeline import InferencePipeline, LowQuality
from fingerprint.batching.to_the_end import to_the_end
from fingerprint.gallery.health import StoreHealth
from fingerprint.gallery.identifiers import check_subject_id
from fingerprint.gallery.index import GalleryIndex
from fingerprint.gallery.store import (
    GalleryStore,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    KeptImage,
    StoreUnavailable,
    Template,
    TemplateMeta,
)
from fingerprint.gallery.sync import GallerySync
from fingerprint.model.nfiq2 import nfiq2_score
from fingerprint.model.weights import ModelMeta
from fingerprint.outcomes import Enrolled, IdempotencyConflict
from fingerprint.settings import Settings


class Enrolment:
    def __init__(self, settings: Settings, store: GalleryStore, health: StoreHealth, count: Callable[[str, str], None],
                 ready: Callable[[], tuple[InferencePipeline, GalleryIndex, ModelMeta]],
                 follower: Callable[[], GallerySync | None]) -> None:
        """`ready`: the pipeline, index and model once loaded (NotReady before); `follower`: this replica's
        change-log follower where the store is shared."""
        self.settings = settings
        self.store = store
        self.health = health
        self._count = count
        self._ready = ready
        self._follower = follower

    async def enroll(self, image: bytes, dpi: float | None, subject_id: str, finger: str | None,
                     idempotency_key: str | None = None, caller: str = "") -> Enrolled:
        """Extract and store one template. With `idempotency_key`, the same key and request from the same
        `caller` answer what the first did and store nothing more; the same key with another request is a
        conflict. The key is committed with the template, so a retry racing its original still finds it."""
        check_subject_id(subject_id)
        pipeline, index, meta = self._ready()
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyClaim.of(caller, idempotency_key, subject_id, finger, dpi, image)
            if (replay := await self._replay(claim)) is not None:
                return replay
        self.health.require_writable()  # before the forward pass: a write that cannot land costs nothing
        # NFIQ 2 alongside the extraction (its own thread): the two overlap instead of adding up
        deadline = Deadline.after(self.settings.request_timeout)
        nfiq = asyncio.ensure_future(asyncio.to_thread(nfiq2_score, image, dpi, self.settings.max_image_pixels))
        try:
            extracted = await pipeline.extract(image, dpi, deadline, min_quality=self.settings.min_enroll_quality)
        except BaseException:
            nfiq.cancel()  # its thread finishes on its own; nobody waits for a score no one will read
            raise
        # bounded like every other stage: a stalled NFIQ 2 is a 504, never a request that waits forever
        nfiq2 = await pipeline.within(nfiq, deadline)
        if self.settings.min_enroll_nfiq2 and (nfiq2 or 0) < self.settings.min_enroll_nfiq2:
            raise LowQuality(nfiq2 or 0, self.settings.min_enroll_nfiq2, "NFIQ 2")
        found = extracted.minutiae
        if found is not None and found.count < self.settings.min_enroll_minutiae:
            raise LowQuality(found.count, self.settings.min_enroll_minutiae, "minutiae count")
        template = Template(
            meta=TemplateMeta(
                template_id=str(uuid.uuid4()), subject_id=subject_id, finger=finger, model_version=meta.version,
                quality=extracted.quality, created_at=datetime.now(UTC), nfiq2=nfiq2,
            ),
            embedding=extracted.template,
            dense=extracted.dense,
            minutiae=extracted.minutiae,
        )
        try:
            kept = KeptImage(image, dpi) if self.settings.keep_enrollment_images else None
            await to_the_end(self._commit(template, index, claim, kept))
        except IdempotencyKeyTaken:
            if claim is not None and (replay := await self._replay(claim)) is not None:
                return replay
            raise IdempotencyConflict("a request with this Idempotency-Key is finishing; retry") from None
        self._count("enroll", "enrolled")
        return Enrolled(template.meta.template_id, subject_id, finger, round(extracted.quality, 4), meta.version, nfiq2)

    async def _replay(self, claim: IdempotencyClaim) -> Enrolled | None:
        prior = await self.store.claimed(claim.key_hash)
        if prior is None:
            return None
        request_hash, m = prior
        if request_hash != claim.request_hash:
            raise IdempotencyConflict("this Idempotency-Key was used for a different enroll request")
        self._count("enroll", "replayed")
        return Enrolled(m.template_id, m.subject_id, m.finger, round(m.quality, 4), m.model_version, m.nfiq2,
                        replayed=True)

    async def _commit(self, template: Template, index: GalleryIndex, claim: IdempotencyClaim | None = None,
                      kept: KeptImage | None = None) -> None:
        try:
            # durable first: the index only ever holds committed templates
            seq = await self.store.add(template, claim, kept)
        except StoreUnavailable as exc:
            self.health.saw(exc)
            raise
        sync = self._follower()
        if sync is not None:
            await sync.wait_until(seq)  # the change log is the index's only writer: order is kept
        else:
            index.add_template(template)
