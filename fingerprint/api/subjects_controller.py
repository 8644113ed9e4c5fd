"""GET and DELETE /api/v1/subjects/{subject_id}: metadata only, and the right to erasure."""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any

from litestar import Controller, Request, delete, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from fingerprint.api.audit import audited
from fingerprint.api.errors import ApiError
from fingerprint.api.schemas import (
    EraseResponse,
    ErrorResponse,
    SubjectPage,
    SubjectResponse,
    SubjectSummaryInfo,
    TemplateInfo,
)
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


def _after(cursor: str | None) -> str | None:
    """The subject id a cursor stands for (opaque to clients: base64url of the last id of a page)."""
    if cursor is None:
        return None
    try:
        after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this service returned") from None
    if not re.fullmatch(SUBJECT_ID_PATTERN, after):
        raise ApiError(400, "invalid_cursor", "cursor is not one this service returned")
    return after


class SubjectsController(Controller):
    path = "/api/v1/subjects"
    tags = ["subjects"]

    @get("/", responses={k: v for k, v in _ERRORS.items() if k != 404}, guards=[requires("admin")],
         operation_id="list_subjects", security=BEARER,
         summary="Enrolled subjects, a page at a time in id order (metadata, never template bytes)")
    async def list_subjects(self, request: Request[Any, Any, Any], service: NamedDependency[FingerprintService],
                            limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
                            cursor: Annotated[str | None, Parameter(max_length=200)] = None) -> SubjectPage:
        with audited(request, "list_subjects"):
            subjects, last = await service.records.subjects(limit, _after(cursor))
        return SubjectPage(
            subjects=[SubjectSummaryInfo(subject_id=s.subject_id, templates=s.templates, fingers=list(s.fingers),
                                         first_enrolled=s.first_enrolled, last_enrolled=s.last_enrolled)
                      for s in subjects],
            next_cursor=None if last is None else base64.urlsafe_b64encode(last.encode()).decode().rstrip("="))

    @get("/{subject_id:str}", responses=_ERRORS, guards=[requires("admin")], operation_id="get_subject", security=BEARER,
         summary="A subject's templates (metadata, never template bytes)")
    async def get_subject(self, request: Request[Any, Any, Any], subject_id: SubjectPath,
                          service: NamedDependency[FingerprintService]) -> SubjectResponse:
        with audited(request, "list_templates", subject_id):
            templates = await service.records.subject(subject_id)
        return SubjectResponse(
            subject_id=subject_id,
            templates=[TemplateInfo(template_id=t.template_id, finger=t.finger, model_version=t.model_version,
                                    quality=round(t.quality, 4), created_at=t.created_at, nfiq2=t.nfiq2) for t in templates],
        )

    @delete("/{subject_id:str}", status_code=200, responses=_ERRORS, guards=[requires("admin")], operation_id="erase_subject",
            security=BEARER,
            summary="Erase a subject and all its templates")
    async def erase_subject(self, request: Request[Any, Any, Any], subject_id: SubjectPath,
                            service: NamedDependency[FingerprintService]) -> EraseResponse:
        with audited(request, "erase", subject_id):
            count = await service.records.erase(subject_id)
        return EraseResponse(subject_id=subject_id, erased_templates=count)
