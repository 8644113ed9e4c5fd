"""What is kept about subjects, beside matching: listing and reading their templates' metadata, a
template's minutiae as a standard record, and erasure (a subject or one template) that every replica
honours before it answers."""

from __future__ import annotations

from collections.abc import Callable

from fingerprint.batching.to_the_end import to_the_end
from fingerprint.gallery.health import StoreHealth
from fingerprint.gallery.identifiers import check_subject_id
from fingerprint.gallery.index import GalleryIndex
from fingerprint.gallery.store import GalleryStore, StoreUnavailable, SubjectSummary, TemplateMeta
from fingerprint.gallery.sync import GallerySync
from fingerprint.model.minutiae.interchange import RecordFormat, encode_record
from fingerprint.outcomes import NoMinutiae, SubjectNotFound, TemplateNotFound


class GalleryRecords:
    def __init__(self, store: GalleryStore, health: StoreHealth, count: Callable[[str, str], None],
                 followers: Callable[[], tuple[GallerySync | None, GalleryIndex | None]]) -> None:
        self.store = store
        self.health = health
        self._count = count
        self._followers = followers  # this replica's change-log follower and index, once loaded

    async def _erased(self, seq: int, drop: Callable[[GalleryIndex], object]) -> None:
        """Return once this replica no longer matches what was erased (read-your-erase)."""
        sync, index = self._followers()
        if sync is not None:
            await to_the_end(sync.wait_until(seq))
        elif index is not None:
            drop(index)

    async def subject(self, subject_id: str) -> list[TemplateMeta]:
        check_subject_id(subject_id)
        templates = await self.store.subject_templates(subject_id)
        if not templates:
            raise SubjectNotFound(subject_id)
        return templates

    async def subjects(self, limit: int, after: str | None) -> tuple[list[SubjectSummary], str | None]:
        """A page of subjects in id order, and the last id shown when more follow (the next page's start)."""
        if after is not None:
            check_subject_id(after)
        page = await self.store.subjects(limit + 1, after)
        return page[:limit], page[limit - 1].subject_id if len(page) > limit else None

    async def erase(self, subject_id: str) -> int:
        check_subject_id(subject_id)
        self.health.require_writable(erasing=True)
        try:
            erased, seq = await to_the_end(self.store.erase(subject_id))
        except StoreUnavailable as exc:
            self.health.saw(exc)
            raise
        await self._erased(seq, lambda index: index.remove_subject(subject_id))
        if not erased:
            raise SubjectNotFound(subject_id)
        self._count("erase", "erased")
        return len(erased)

    async def minutiae_record(self, template_id: str, fmt: RecordFormat) -> tuple[bytes, str]:
        """The template's minutiae as a standard record, and the subject it belongs to."""
        template = await self.store.template(template_id)
        if template is None:
            raise TemplateNotFound(template_id)
        if template.minutiae is None:
            raise NoMinutiae("this template's model version keeps no minutiae; re-enroll to export them")
        m = template.meta
        return encode_record(template.minutiae, fmt, m.finger, m.quality), m.subject_id

    async def erase_template(self, template_id: str) -> str:
        """Erase one template (another finger or impression of the subject stays); the subject it belonged to."""
        self.health.require_writable(erasing=True)
        try:
            erased = await to_the_end(self.store.erase_template(template_id))
        except StoreUnavailable as exc:
            self.health.saw(exc)
            raise
        await self._erased(erased.seq, lambda index: [index.remove_template(t) for t in erased.template_ids])
        if erased.subject_id is None:
            raise TemplateNotFound(template_id)
        self._count("erase_template", "erased")
        return erased.subject_id

    async def templates_by_version(self) -> dict[str, int] | None:
        """Counted now (None while the store is unavailable)."""
        return await self.health.census()
