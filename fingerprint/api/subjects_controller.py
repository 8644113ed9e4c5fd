"""GET and DELETE /api/v1/subjects/{subject_id}: metadata only, and the right to erasure."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from fingerprint.api.audit import audited
from fingerprint.api.schemas import EraseResponse, ErrorResponse, SubjectResponse, TemplateInfo
from fingerprint.gallery.identifiers import SUBJECT_ID_PATTERN
from fingerprint.security.guards import BEARER, requires
from fingerprint.service import FingerprintService

SubjectPath = Annotated[str, Parameter(pattern=SUBJECT_ID_PATTERN, max_length=128,
                                       description="1-128 of A-Z a-z 0-9 . _ : @ -")]

_ERRORS = {
    401: ResponseSpec(data_container=ErrorResponse, description="missing or invalid API key"),
    403: ResponseSpec(data_container=ErrorResponse, description="API key lacks the admin scope"),
    400: ResponseSpec(data_container=ErrorResponse, description="malformed subject id"),
    404: ResponseSpec(data_container=ErrorResponse, description="unknown subject"),
    503: ResponseSpec(data_container=ErrorResponse, description="store unavailable"),
}


class SubjectsController(Controller):
    path = "/api/v1/subjects"
    tags = ["subjects"]

    @get("/{subject_id:str}", responses=_ERRORS, guards=[requires("admin")], operation_id="get_subject", security=BEARER,
         summary="A subject's templates (metadata, never template bytes)")
    async def get_subject(self, request: Request[Any, Any, Any], subject_id: SubjectPath,
                          service: NamedDependency[FingerprintService]) -> SubjectResponse:
        with audited(request, "list_templates", subject_id):
            templates = await service.subject(subject_id)
        return SubjectResponse(
            subject_id=subject_id,
            templates=[TemplateInfo(template_id=t.template_id, finger=t.finger, model_version=t.model_version,
                                    quality=round(t.quality, 4), created_at=t.created_at) for t in templates],
        )

    @delete("/{subject_id:str}", status_code=200, responses=_ERRORS, guards=[requires("admin")], operation_id="erase_subject",
            security=BEARER,
            summary="Erase a subject and all its templates")
    async def erase_subject(self, request: Request[Any, Any, Any], subject_id: SubjectPath,
                            service: NamedDependency[FingerprintService]) -> EraseResponse:
        with audited(request, "erase", subject_id):
            count = await service.erase(subject_id)
        return EraseResponse(subject_id=subject_id, erased_templates=count)
