"""Cancel work whose client has gone: nobody will read the answer, so it must not cost a forward pass."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request

T = TypeVar("T")


class ClientGone(Exception):
    pass


async def unless_disconnected(request: Request[Any, Any, Any], work: Awaitable[T],
                              on_gone: Callable[[], None] | None = None) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientGone.

    Only call once the body has been read: then the next ASGI message can only be a disconnect.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(request.receive())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        message = watcher.result()
        if message.get("type") == "http.disconnect":
            task.cancel()
            try:
                # work past its point of no return (an enroll's commit) finishes: its outcome stands
                return await task
            except asyncio.CancelledError:
                if on_gone is not None:
                    on_gone()
                raise ClientGone() from None
        return await task
    finally:
        if not watcher.done():
            watcher.cancel()
        if not task.done():
            task.cancel()
