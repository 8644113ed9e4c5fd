"""What a gallery store keeps, and the interface every store (SQLite, PostgreSQL) implements."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fingerprint.model.minutiae.template import MinutiaeTemplate

if TYPE_CHECKING:
    from fingerprint.gallery.codec import EmbeddingCodec
    from fingerprint.gallery.index import GalleryIndex
    from fingerprint.gallery.sync import GallerySync


class StoreUnavailable(Exception):
    """The backing database cannot be reached; requests needing it answer 503."""


class StoreFull(StoreUnavailable):
    """The store's disk is full: reads and erasure still work, new templates cannot be written."""


@dataclass(frozen=True)
class TemplateMeta:
    template_id: str
    subject_id: str
    finger: str | None
    model_version: str
    quality: float
    created_at: datetime
    nfiq2: int | None = None  # NFIQ 2 of the enrolment image (None: not assessed)
    source_id: str | None = None  # the template this one was rebuilt from (gallery reindex), erased with it


@dataclass(frozen=True)
class SubjectSummary:
    subject_id: str
    templates: int
    fingers: tuple[str, ...]  # the finger positions enrolled, where given
    first_enrolled: datetime
    last_enrolled: datetime


@dataclass(frozen=True)
class Template:
    meta: TemplateMeta
    embedding: np.ndarray  # float32 (D,): the search vector
    dense: np.ndarray | None = None  # int8 (C, H, W) descriptor grid for models with dense matching
    minutiae: MinutiaeTemplate | None = None  # for models that also compare minutiae (model card)


@dataclass(frozen=True)
class KeptImage:
    """An enrolment image kept (sealed) beside its template, so a later model can rebuild the template."""

    data: bytes
    dpi: float | None


@dataclass(frozen=True)
class TemplateErasure:
    subject_id: str | None  # None: no such template
    seq: int  # the change sequence of the erasure (0 for a store with no change log, or nothing erased)
    template_ids: tuple[str, ...] = ()  # every template erased: the one named and those rebuilt from it


@dataclass(frozen=True)
class StoredRow:
    meta: TemplateMeta
    template: bytes  # as stored: sealed when the gallery seals
    image: bytes | None = None  # the kept enrolment image, sealed, if there is one
    image_dpi: float | None = None


@dataclass(frozen=True)
class IdempotencyClaim:
    """An enroll's Idempotency-Key, stored with its template in one transaction: a retry finds it."""

    key_hash: str  # sha256 of the caller's key id and the header: keys of different callers never meet
    request_hash: str  # sha256 of what was asked (subject, finger, dpi, image bytes), not of the encoding

    @classmethod
    def of(cls, caller: str, key: str, subject_id: str, finger: str | None, dpi: float | None,
           image: bytes) -> IdempotencyClaim:
        """Hashes only: the key may carry client data, and the request is the image, not its encoding
        (a retry's multipart boundary differs)."""
        request = hashlib.sha256(f"{subject_id}\n{finger or ''}\n{dpi or ''}\n".encode())
        request.update(image)
        return cls(hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest(), request.hexdigest())


IDEMPOTENCY_TTL_SECONDS = 24 * 3600  # a key is remembered this long, then pruned


class IdempotencyKeyTaken(Exception):
    """Another request committed under the same key first (a retry racing its original)."""


@dataclass(frozen=True)
class Change:
    """One entry of a shared store's change log."""

    seq: int
    op: str  # "add" | "erase" (a subject) | "remove" (one template)
    subject_id: str
    template: Template | None  # for "add": the template, None if erased since
    template_id: str | None = None  # for "remove": the template removed


class GalleryStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    replicated: bool  # True when other processes share the store and a change log must be followed

    async def load(self, versions: tuple[str, ...], add: Callable[[Template], None]) -> int:
        """Pass every template of `versions` to `add`; the change sequence they reflect (0 without a log)."""
        ...

    def follower(self, index: GalleryIndex, versions: tuple[str, ...], seq: int, interval: float) -> GallerySync | None:
        """What keeps `index` in step with changes other processes make after `seq` (None: nobody else writes)."""
        ...

    async def add(self, template: Template, claim: IdempotencyClaim | None = None, image: KeptImage | None = None) -> int:
        """Durably stored when this returns; the change sequence (0 for a store with no change log).
        With a claim, the key is stored in the same transaction (IdempotencyKeyTaken if it already is);
        with an image, the image is kept (sealed) with the template."""
        ...

    async def add_derived(self, template: Template, source_id: str, image: KeptImage) -> bool:
        """Store a template rebuilt from `source_id`'s kept image by another model version, with the image,
        only if the source is still stored (checked in the same transaction: an erasure racing a reindex
        never brings a subject back). Erasing the source template later erases this one too."""
        ...

    def kept_images(self) -> AsyncIterator[tuple[TemplateMeta, KeptImage]]:
        """Every template that has its enrolment image kept, with the image (opened)."""
        ...

    async def add_if_absent(self, template: Template, image: KeptImage | None = None) -> bool:
        """Store the template (and its kept image) unless its id is already stored (an import run again);
        True if stored."""
        ...

    def iter_rows(self) -> AsyncIterator[StoredRow]:
        """Every stored row, any model version, its bytes as stored (sealed when they are): what an export
        copies without opening a template."""
        ...

    async def claimed(self, key_hash: str) -> tuple[str, TemplateMeta] | None:
        """The request hash and template a live (unexpired, not erased) idempotency key stands for."""
        ...

    async def erase(self, subject_id: str) -> tuple[list[str], int]:
        """Erase every template of the subject in one transaction: the erased template ids, and the change
        sequence of the erasure (0 for a store with no change log, or when nothing was erased)."""
        ...

    async def erase_template(self, template_id: str) -> TemplateErasure:
        """Erase one template and what was rebuilt from it for other model versions, in one transaction."""
        ...

    async def subject_templates(self, subject_id: str) -> list[TemplateMeta]: ...

    async def template(self, template_id: str) -> Template | None:
        """One stored template, opened (None when unknown or when it cannot be opened)."""
        ...

    async def subjects(self, limit: int, after: str | None) -> list[SubjectSummary]:
        """Up to `limit` subjects in subject-id order, those after `after` (a keyset page: stable while
        subjects are added or erased)."""
        ...

    def iter_templates(self, versions: tuple[str, ...]) -> AsyncIterator[Template]:
        """Templates whose model version is one of `versions` (those the loaded model reads)."""
        ...

    async def count_by_version(self) -> dict[str, int]: ...

    async def rotate(self) -> int:
        """Re-encrypt every template under the active template key; how many were re-sealed."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot serve, StoreFull when it cannot take writes."""
        ...

    codec: EmbeddingCodec  # counts the rows it refused to open
