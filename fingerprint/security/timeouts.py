"""Bounds on how long a client may take to send a request: a stalled connection is closed, not kept.

uvicorn bounds only the idle time between requests. Headers are parsed before the app sees the
request, so their bound lives in the HTTP protocol (`HeaderTimeoutProtocol`); the body's is an ASGI
middleware (`body_deadline`) that answers 408 when the whole body has not arrived in time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


class BodyTimeout(Exception):
    pass


class HeaderTimeoutProtocol(H11Protocol):
    """h11 with a deadline from a connection's first byte of a request to the end of its headers."""

    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm()
        super().data_received(data)
        if not self._between_requests():  # the headers are complete: a request cycle has begun
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self._between_requests() and not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    return type("HeaderTimeoutH11", (HeaderTimeoutProtocol,), {"header_timeout": seconds})


def body_deadline(app: ASGIApp, seconds: float) -> ASGIApp:
    """Raise BodyTimeout (408) in whatever reads the body when all of it has not come within `seconds`
    of the request; after the body, `receive` is only awaited for a disconnect and is left unbounded."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + seconds
        body_done = False

        async def bounded_receive() -> ReceiveMessage:
            nonlocal body_done
            if body_done:
                return await receive()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.0))
            except TimeoutError:
                raise BodyTimeout() from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await app(scope, bounded_receive, send)

    return middleware
