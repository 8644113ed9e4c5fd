"""Every failure becomes `{"error": {"code", "message"}}` with a stable code and the right status."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.exceptions import ValidationException as LitestarValidation
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from fingerprint.api.disconnect import ClientGone
from fingerprint.batching.admission import QueueFull
from fingerprint.batching.deadline import StageTimeout
from fingerprint.batching.pipeline import LowQuality
from fingerprint.gallery.identifiers import InvalidSubjectId
from fingerprint.gallery.store import StoreFull, StoreUnavailable
from fingerprint.model.decode import ImageRejected
from fingerprint.outcomes import IdempotencyConflict, NoMinutiae, NotReady, SubjectNotFound, TemplateNotFound
from fingerprint.security.timeouts import BodyTimeout

log = structlog.get_logger("fingerprint.api")

_IMAGE_STATUS = {"image_too_large": 413, "unsupported_image_format": 415}
RETRY_AFTER_SECONDS = "1"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(request: Request[Any, Any, Any], status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response[dict[str, dict[str, str]]]:
    request.scope.setdefault("state", {})["error_code"] = code
    return Response(
        {"error": {"code": code, "message": message}}, status_code=status, media_type=MediaType.JSON, headers=headers
    )


def to_api_error(exc: Exception) -> ApiError:
    """Domain exceptions to HTTP; anything unknown is a 500 that never echoes internals."""
    match exc:
        case ApiError():
            return exc
        case ImageRejected():
            return ApiError(_IMAGE_STATUS.get(exc.code, 422), exc.code, exc.message)
        case LowQuality():
            return ApiError(422, "low_quality", str(exc))
        case QueueFull():
            # the server's condition, not the client's: 503 + Retry-After (429 is kept for per-key rate limits)
            return ApiError(503, "queue_full", str(exc), {"Retry-After": RETRY_AFTER_SECONDS})
        case StageTimeout():
            return ApiError(504, exc.stage, f"the request did not complete in time ({exc.stage})")
        case NotReady():
            return ApiError(503, exc.code, str(exc), {"Retry-After": "5"})
        case SubjectNotFound():
            return ApiError(404, "subject_not_found", "the subject is not enrolled")  # never echo the id
        case IdempotencyConflict():
            return ApiError(409, "idempotency_key_reused", str(exc))
        case NoMinutiae():
            return ApiError(409, "no_minutiae", str(exc))
        case TemplateNotFound():
            return ApiError(404, "template_not_found", "no such template")
        case InvalidSubjectId():
            return ApiError(400, "invalid_subject_id", str(exc))
        case StoreFull():
            return ApiError(503, "store_full", "the gallery disk is full: nothing new can be stored", {"Retry-After": "30"})
        case StoreUnavailable():
            return ApiError(503, "store_unavailable", "the gallery store is unavailable", {"Retry-After": "5"})
        case ClientGone():
            # nginx's 499: the client hung up before the answer; not a server error, nothing half-done
            return ApiError(499, "client_closed_request", "the client closed the connection")
        case BodyTimeout():
            return ApiError(408, "body_timeout", "the request body did not arrive in time", {"Connection": "close"})
    return ApiError(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred")


def _domain_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, dict[str, str]]]:
    err = to_api_error(exc)
    if err.status >= 500 and err.code == "internal_error":
        log.error("unhandled error", **{"error.type": type(exc).__name__}, exc_info=exc)
    return error_response(request, err.status, err.code, err.message, err.headers)


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited",
}


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, dict[str, str]]]:
    status = exc.status_code
    if isinstance(exc, LitestarValidation):
        keys = {item.get("key") for item in exc.extra if isinstance(item, dict)} if isinstance(exc.extra, list) else set()
        code = "invalid_subject_id" if "subject_id" in keys else "invalid_request"
        return error_response(request, 400, code, _validation_message(exc))
    code = _HTTP_CODES.get(status, "http_error")
    if status >= 500:
        code = "internal_error"
    message = exc.detail if status < 500 else "an internal error occurred"
    return error_response(request, status, code, message, dict(exc.headers or {}))


def _validation_message(exc: LitestarValidation) -> str:
    extra = exc.extra
    if isinstance(extra, list) and extra:
        parts = []
        for item in extra[:3]:
            if isinstance(item, dict):
                parts.append(f"{item.get('key', '')}: {item.get('message', '')}".strip(": "))
        if parts:
            return "; ".join(parts)
    return str(exc.detail)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_handler,
    NotFoundException: _http_handler,
    NotAuthorizedException: _http_handler,
    PermissionDeniedException: _http_handler,
    Exception: _domain_handler,
}
