"""/api/v1/templates/{template_id}: one enrolled impression, erased alone (the subject's others stay)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter, QueryParameter

from fingerprint.api.audit import audited
from fingerprint.api.schemas import ErrorResponse, TemplateErased
from fingerprint.model.minutiae.interchange import RecordFormat
from fingerprint.security.guards import BEARER, requires
from fingerprint.service import FingerprintService

TemplatePath = Annotated[str, Parameter(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                                        max_length=36, description="a template id enroll returned")]

_ERRORS = {
    400: ResponseSpec(data_container=ErrorResponse, description="malformed template id"),
    401: ResponseSpec(data_container=ErrorResponse, description="missing or invalid API key"),
    403: ResponseSpec(data_container=ErrorResponse, description="API key lacks the admin scope"),
    404: ResponseSpec(data_container=ErrorResponse, description="unknown template"),
    503: ResponseSpec(data_container=ErrorResponse, description="store unavailable"),
}


_MEDIA = {"iso19794-2": "application/octet-stream", "ansi378": "application/octet-stream",
          "json": "application/json"}
_SUFFIX = {"iso19794-2": "ist", "ansi378": "ansi", "json": "json"}


class TemplatesController(Controller):
    path = "/api/v1/templates"
    tags = ["templates"]

    @delete("/{template_id:str}", status_code=200, responses=_ERRORS, guards=[requires("admin")],
            operation_id="erase_template", security=BEARER,
            summary="Erase one template; once answered no replica matches it")
    async def erase_template(self, request: Request[Any, Any, Any], template_id: TemplatePath,
                             service: NamedDependency[FingerprintService]) -> TemplateErased:
        with audited(request, "erase_template") as audit:
            audit.templates.append(template_id)
            subject_id = await service.records.erase_template(template_id)
            audit.subjects.append(subject_id)
        return TemplateErased(template_id=template_id, subject_id=subject_id)

    @get("/{template_id:str}/minutiae", responses={**_ERRORS, 409: ResponseSpec(
            data_container=ErrorResponse, description="the template's model version keeps no minutiae")},
         guards=[requires("admin")], operation_id="export_minutiae", security=BEARER, media_type="application/octet-stream",
         summary="The template's minutiae as ISO/IEC 19794-2:2005, ANSI INCITS 378-2004 or JSON, for another AFIS")
    async def export_minutiae(self, request: Request[Any, Any, Any], template_id: TemplatePath,
                              service: NamedDependency[FingerprintService],
                              format: Annotated[RecordFormat, QueryParameter(
                                  description="iso19794-2 (default), ansi378 or json")] = "iso19794-2") -> Response[bytes]:
        with audited(request, "export_minutiae") as audit:
            audit.templates.append(template_id)
            record, subject_id = await service.records.minutiae_record(template_id, format)
            audit.subjects.append(subject_id)
        return Response(record, media_type=_MEDIA[format], headers={
            "Content-Disposition": f'attachment; filename="{template_id}.{_SUFFIX[format]}"'})
