"""A Python client for the Fingerprint API: sync (`Client`) and async (`AsyncClient`), typed answers,
errors raised with the service's code, and 503s retried as the service asks (Retry-After, backing off).

    from fingerprint.client import Client, FingerprintError

    with Client("https://fingerprint.example.com", api_key="fpk_...") as fp:
        fp.enroll(Path("alice.wsq").read_bytes(), "alice", finger="right_index")
        best = fp.identify(probe).candidates[0]
        for subject in fp.subjects():  # every page, following the cursors
            ...

Images go as multipart bytes (no base64). Needs httpx (`pip install 'fingerprint-api[client]'`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import httpx
import msgspec

from fingerprint.api.schemas import (
    EnrollResponse,
    EraseResponse,
    IdentifyResponse,
    SubjectPage,
    SubjectSummaryInfo,
    TemplateErased,
    VerifyResponse,
)

__all__ = ["AsyncClient", "Client", "EnrollResponse", "EraseResponse", "FingerprintError", "IdentifyResponse",
           "SubjectSummaryInfo", "TemplateErased", "VerifyResponse"]

R = TypeVar("R")
_MAX_WAIT = 30.0  # seconds between attempts at most, whatever Retry-After says


class _Error(msgspec.Struct):
    code: str  # any string: a newer service may answer codes this client does not list
    message: str


class _ErrorBody(msgspec.Struct):
    error: _Error


class FingerprintError(Exception):
    """An answer other than success: `status` (HTTP), `code` (the service's machine-readable code, e.g.
    `low_quality`, `subject_not_found`, `queue_full`), `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _fields(**values: Any) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _enroll(image: bytes, subject_id: str, finger: str | None, dpi: float | None,
            idempotency_key: str | None) -> dict[str, Any]:
    # every enroll carries a key, so that retrying it (here on 503, or by the caller after a timeout with
    # the same key) never stores a second template
    return {"url": "/api/v1/fingerprint/enroll", "files": {"image": ("print", image)},
            "data": _fields(subject_id=subject_id, finger=finger, dpi=dpi),
            "headers": {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}}


def _verify(image: bytes, subject_id: str, dpi: float | None) -> dict[str, Any]:
    return {"url": "/api/v1/fingerprint/verify", "files": {"image": ("print", image)},
            "data": _fields(subject_id=subject_id, dpi=dpi)}


def _identify(image: bytes, top_k: int, threshold: float | None, dpi: float | None) -> dict[str, Any]:
    return {"url": "/api/v1/fingerprint/identify", "files": {"image": ("print", image)},
            "data": _fields(top_k=top_k, threshold=threshold, dpi=dpi)}


def _decoded(response: httpx.Response, kind: type[R]) -> R:
    if response.is_success:
        if kind is bytes:
            return response.content  # type: ignore[return-value]
        return msgspec.json.decode(response.content, type=kind)
    try:
        error = msgspec.json.decode(response.content, type=_ErrorBody).error
        code, message = error.code, error.message
    except msgspec.DecodeError:
        code, message = "http_error", response.text[:200]
    raise FingerprintError(response.status_code, code, message)


def _wait(response: httpx.Response, attempt: int) -> float | None:
    """Seconds to wait before trying again, or None when this answer is final."""
    if response.status_code != 503:
        return None
    try:
        asked = float(response.headers.get("retry-after", "1"))
    except ValueError:
        asked = 1.0
    return float(min(_MAX_WAIT, max(asked, 0.5 * 2.0**attempt)))


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=url, headers=_headers(api_key), timeout=timeout, transport=transport)
        self._retries = retries

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, kind: type[R], **request: Any) -> R:
        for attempt in range(self._retries + 1):
            response = self._http.request(method, **request)
            wait = _wait(response, attempt)
            if wait is None or attempt == self._retries:
                return _decoded(response, kind)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def enroll(self, image: bytes, subject_id: str, finger: str | None = None, dpi: float | None = None,
               idempotency_key: str | None = None) -> EnrollResponse:
        return self._call("POST", EnrollResponse, **_enroll(image, subject_id, finger, dpi, idempotency_key))

    def verify(self, image: bytes, subject_id: str, dpi: float | None = None) -> VerifyResponse:
        return self._call("POST", VerifyResponse, **_verify(image, subject_id, dpi))

    def identify(self, image: bytes, top_k: int = 5, threshold: float | None = None,
                 dpi: float | None = None) -> IdentifyResponse:
        return self._call("POST", IdentifyResponse, **_identify(image, top_k, threshold, dpi))

    def erase(self, subject_id: str) -> EraseResponse:
        return self._call("DELETE", EraseResponse, url=f"/api/v1/subjects/{subject_id}")

    def erase_template(self, template_id: str) -> TemplateErased:
        return self._call("DELETE", TemplateErased, url=f"/api/v1/templates/{template_id}")

    def minutiae(self, template_id: str, format: str = "iso19794-2") -> bytes:
        """The template's minutiae record: `iso19794-2`, `ansi378` or `json` (admin scope)."""
        return self._call("GET", bytes, url=f"/api/v1/templates/{template_id}/minutiae", params={"format": format})

    def subjects(self, page_size: int = 100) -> Iterator[SubjectSummaryInfo]:
        """Every enrolled subject in id order, fetched a page at a time (admin scope)."""
        cursor: str | None = None
        while True:
            page = self._call("GET", SubjectPage, url="/api/v1/subjects",
                              params=_fields(limit=page_size, cursor=cursor))
            yield from page.subjects
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncClient:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=url, headers=_headers(api_key), timeout=timeout, transport=transport)
        self._retries = retries

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, kind: type[R], **request: Any) -> R:
        for attempt in range(self._retries + 1):
            response = await self._http.request(method, **request)
            wait = _wait(response, attempt)
            if wait is None or attempt == self._retries:
                return _decoded(response, kind)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def enroll(self, image: bytes, subject_id: str, finger: str | None = None,
                     dpi: float | None = None, idempotency_key: str | None = None) -> EnrollResponse:
        return await self._call("POST", EnrollResponse, **_enroll(image, subject_id, finger, dpi, idempotency_key))

    async def verify(self, image: bytes, subject_id: str, dpi: float | None = None) -> VerifyResponse:
        return await self._call("POST", VerifyResponse, **_verify(image, subject_id, dpi))

    async def identify(self, image: bytes, top_k: int = 5, threshold: float | None = None,
                       dpi: float | None = None) -> IdentifyResponse:
        return await self._call("POST", IdentifyResponse, **_identify(image, top_k, threshold, dpi))

    async def erase(self, subject_id: str) -> EraseResponse:
        return await self._call("DELETE", EraseResponse, url=f"/api/v1/subjects/{subject_id}")

    async def erase_template(self, template_id: str) -> TemplateErased:
        return await self._call("DELETE", TemplateErased, url=f"/api/v1/templates/{template_id}")

    async def minutiae(self, template_id: str, format: str = "iso19794-2") -> bytes:
        return await self._call("GET", bytes, url=f"/api/v1/templates/{template_id}/minutiae", params={"format": format})

    async def subjects(self, page_size: int = 100) -> AsyncIterator[SubjectSummaryInfo]:
        cursor: str | None = None
        while True:
            page = await self._call("GET", SubjectPage, url="/api/v1/subjects",
                                    params=_fields(limit=page_size, cursor=cursor))
            for subject in page.subjects:
                yield subject
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
