"""GET and DELETE /api/v1/subjects/{subject_id}: metadata only, and the right to erasure."""

from __future__ import annotations

from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from fingerprint.api.inputs import validate_subject_id
from fingerprint.api.schemas import EraseResponse, ErrorResponse, SubjectResponse, TemplateInfo
from fingerprint.service import FingerprintService

_ERRORS = {
    400: ResponseSpec(data_container=ErrorResponse, description="malformed subject id"),
    404: ResponseSpec(data_container=ErrorResponse, description="unknown subject"),
    503: ResponseSpec(data_container=ErrorResponse, description="store unavailable"),
}


class SubjectsController(Controller):
    path = "/api/v1/subjects"
    tags = ["subjects"]

    @get("/{subject_id:str}", responses=_ERRORS, summary="A subject's templates (metadata, never template bytes)")
    async def get_subject(self, subject_id: FromPath[str], service: NamedDependency[FingerprintService]) -> SubjectResponse:
        templates = await service.subject(validate_subject_id(subject_id))
        return SubjectResponse(
            subject_id=subject_id,
            templates=[TemplateInfo(template_id=t.template_id, finger=t.finger, model_version=t.model_version,
                                    quality=round(t.quality, 4), created_at=t.created_at) for t in templates],
        )

    @delete("/{subject_id:str}", status_code=200, responses=_ERRORS, summary="Erase a subject and all its templates")
    async def erase_subject(self, subject_id: FromPath[str], service: NamedDependency[FingerprintService]) -> EraseResponse:
        count = await service.erase(validate_subject_id(subject_id))
        return EraseResponse(subject_id=subject_id, erased_templates=count)
