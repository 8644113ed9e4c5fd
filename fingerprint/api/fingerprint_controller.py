"""POST /api/v1/fingerprint/{enroll,verify,identify}."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter

from fingerprint.api.audit import audited
from fingerprint.api.disconnect import unless_disconnected
from fingerprint.api.inputs import S, read_body
from fingerprint.api.openapi_bodies import operation_with_image_body
from fingerprint.api.schemas import (
    Candidate,
    EnrollJSON,
    EnrollResponse,
    ErrorResponse,
    IdentifyJSON,
    IdentifyResponse,
    VerifyJSON,
    VerifyResponse,
)
from fingerprint.security.guards import BEARER, principal_of, requires
from fingerprint.service import FingerprintService

IdempotencyKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$", required=False,
    description="a client-chosen key (e.g. a UUID): a retry with the same key and request answers the first "
                "response (header Idempotent-Replayed) and stores nothing more; kept 24 h")]


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    text = {400: "malformed request", 401: "missing or invalid API key", 403: "API key lacks the scope",
            409: "Idempotency-Key already used for another request",
            429: "rate limit of the API key exceeded", 404: "unknown subject", 413: "body or image too large",
            415: "unsupported media or image type", 422: "image unusable (not a fingerprint, low quality...)",
            503: "queue full, model not ready or store unavailable (see Retry-After)", 504: "a stage timed out"}
    return {c: ResponseSpec(data_container=ErrorResponse, description=text[c]) for c in codes}


async def _admit(request: Request[Any, Any, Any], service: FingerprintService, schema: type[S]) -> tuple[S, bytes]:
    """Refuse at once when the queue is full, else parse; the body is drained first either way,
    because answering mid-upload makes the server reset the connection."""
    await request.body()
    service.reject_if_saturated()
    return await read_body(request, schema)


class FingerprintController(Controller):
    path = "/api/v1/fingerprint"
    tags = ["fingerprint"]

    @post("/enroll", status_code=201, guards=[requires("enroll")], operation_id="enroll", security=BEARER,
           operation_class=operation_with_image_body(EnrollJSON),
          responses=_errors(400, 401, 403, 409, 413, 415, 422, 429, 503, 504), summary="Enroll a fingerprint for a subject")
    async def enroll(self, request: Request[Any, Any, Any], service: NamedDependency[FingerprintService],
                     idempotency_key: IdempotencyKey = None) -> Response[EnrollResponse]:
        with audited(request, "enroll") as audit:
            body, image = await _admit(request, service, EnrollJSON)
            audit.subjects.append(body.subject_id)
            principal = principal_of(request)
            r = await unless_disconnected(
                request, service.enroll(image, body.dpi, body.subject_id, body.finger, idempotency_key,
                                        principal.key_id if principal else ""), service.client_gone)
            audit.templates.append(r.template_id)
        return Response(EnrollResponse(template_id=r.template_id, subject_id=r.subject_id, finger=r.finger,
                                       quality=r.quality, model_version=r.model_version, nfiq2=r.nfiq2),
                        status_code=201, headers={"Idempotent-Replayed": "true"} if r.replayed else None)

    @post("/verify", status_code=200, guards=[requires("verify")], operation_id="verify", security=BEARER,
           operation_class=operation_with_image_body(VerifyJSON),
          responses=_errors(400, 401, 403, 404, 413, 415, 422, 429, 503, 504), summary="1:1 - is this the subject's finger?")
    async def verify(self, request: Request[Any, Any, Any], service: NamedDependency[FingerprintService]) -> VerifyResponse:
        with audited(request, "verify") as audit:
            body, image = await _admit(request, service, VerifyJSON)
            audit.subjects.append(body.subject_id)
            r = await unless_disconnected(request, service.verify(image, body.dpi, body.subject_id), service.client_gone)
        return VerifyResponse(subject_id=r.subject_id, match=r.match, score=r.score, threshold=r.threshold,
                              template_id=r.template_id, model_version=r.model_version)

    @post("/identify", status_code=200, guards=[requires("identify")], operation_id="identify", security=BEARER,
           operation_class=operation_with_image_body(IdentifyJSON),
          responses=_errors(400, 401, 403, 413, 415, 422, 429, 503, 504), summary="1:N - who is this?")
    async def identify(self, request: Request[Any, Any, Any], service: NamedDependency[FingerprintService]) -> IdentifyResponse:
        with audited(request, "identify") as audit:
            body, image = await _admit(request, service, IdentifyJSON)
            r = await unless_disconnected(request, service.identify(image, body.dpi, body.top_k, body.threshold),
                                          service.client_gone)
            audit.subjects.extend(c.subject_id for c in r.candidates)
        return IdentifyResponse(decision=r.decision, threshold=r.threshold, model_version=r.model_version,
                                candidates=[Candidate(subject_id=c.subject_id, finger=c.finger, template_id=c.template_id,
                                                      score=c.score) for c in r.candidates])
