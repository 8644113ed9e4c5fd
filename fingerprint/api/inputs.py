"""One request body, two encodings: multipart/form-data (file field `image`) or JSON (base64 `image`)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile

from fingerprint.api.errors import ApiError
from fingerprint.api.schemas import (
    FINGER_POSITIONS,
    MAX_TOP_K,
    EnrollJSON,
    IdentifyJSON,
    VerifyJSON,
)
from fingerprint.gallery.identifiers import check_subject_id

S = TypeVar("S", EnrollJSON, VerifyJSON, IdentifyJSON)

_FIELD_CODES = {"subject_id": "invalid_subject_id", "top_k": "invalid_top_k", "threshold": "invalid_threshold",
                "finger": "invalid_finger", "dpi": "invalid_dpi", "image": "invalid_image_field"}


async def read_body(request: Request[Any, Any, Any], schema: type[S]) -> tuple[S, bytes]:
    """The validated fields and the raw image bytes."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        parsed, image = await _from_json(request, schema)
    elif content_type == "multipart/form-data":
        parsed, image = await _from_form(request, schema)
    else:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with an `image` file, or application/json")
    if isinstance(parsed, EnrollJSON | VerifyJSON):
        check_subject_id(parsed.subject_id)  # before any work is queued for it
    return parsed, image


async def _from_json(request: Request[Any, Any, Any], schema: type[S]) -> tuple[S, bytes]:
    raw = await request.body()
    if not raw:
        raise ApiError(400, "empty_body", "the request body is empty")
    try:
        parsed = msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc)) from None
    except msgspec.DecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    try:
        image = base64.b64decode(parsed.image, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_base64", "`image` is not valid base64") from None
    return parsed, image


def _field_error(message: str) -> ApiError:
    # msgspec messages end with "- at `$.field`"
    match = re.search(r"\$\.(\w+)", message)
    field = match.group(1) if match else ""
    if "Object missing required field" in message:
        missing = re.search(r"`(\w+)`", message)
        name = missing.group(1) if missing else "field"
        code = "missing_image" if name == "image" else f"missing_{name}"
        return ApiError(400, code, f"required field `{name}` is missing")
    return ApiError(400, _FIELD_CODES.get(field, "invalid_request"), message)


async def _from_form(request: Request[Any, Any, Any], schema: type[S]) -> tuple[S, bytes]:
    try:
        form = await request.form()
    except Exception:
        raise ApiError(400, "invalid_multipart", "the multipart body cannot be parsed") from None
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "missing_image", "multipart field `image` must be a file")
    image = await upload.read()
    fields: dict[str, Any] = {"image": ""}
    for key, value in form.items():
        if key == "image":
            continue
        if isinstance(value, UploadFile):
            raise ApiError(400, "invalid_request", f"field `{key}` must not be a file")
        fields[key] = _coerce(key, value)
    try:
        parsed = msgspec.convert(fields, type=schema)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc)) from None
    return parsed, image


def _coerce(key: str, value: str) -> Any:
    if key == "top_k":
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, "invalid_top_k", f"top_k must be an integer between 1 and {MAX_TOP_K}") from None
    if key in ("dpi", "threshold"):
        try:
            return float(value)
        except ValueError:
            raise ApiError(400, _FIELD_CODES[key], f"{key} must be a number") from None
    if key == "finger" and value not in FINGER_POSITIONS:
        raise ApiError(400, "invalid_finger", f"finger must be one of {sorted(FINGER_POSITIONS)}")
    return value
