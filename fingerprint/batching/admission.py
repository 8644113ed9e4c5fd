"""The bounded queue: at most `capacity` requests inside the pipeline; the rest are refused at once."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class QueueFull(Exception):
    def __init__(self, capacity: int) -> None:
        super().__init__(f"the inference queue is full ({capacity} requests)")
        self.capacity = capacity


class Admission:
    """Counts requests from admission until they leave the pipeline, whatever the outcome.

    Refusing at the door (instead of letting an unbounded asyncio queue grow) keeps latency of admitted
    work bounded and tells clients to back off while the server is saturated.
    """

    def __init__(self, capacity: int, on_change: Callable[[int], None] | None = None,
                 on_refused: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self._depth = 0
        self._closed = False
        self._on_change = on_change
        self._on_refused = on_refused

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop admitting (shutdown); work already admitted continues."""
        self._closed = True

    def refuse_if_full(self) -> None:
        """The one admission rule: raise QueueFull (and count the refusal) when no slot is free."""
        if self._closed or self._depth >= self.capacity:
            if self._on_refused:
                self._on_refused()
            raise QueueFull(self.capacity)

    def slot(self) -> _Slot:
        self.refuse_if_full()
        self._depth += 1
        if self._on_change:
            self._on_change(self._depth)
        return _Slot(self)

    def _release(self) -> None:
        self._depth -= 1
        if self._on_change:
            self._on_change(self._depth)


class _Slot:
    def __init__(self, owner: Admission) -> None:
        self._owner = owner
        self._released = False

    def __enter__(self) -> _Slot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._released:
            self._released = True
            self._owner._release()
