"""The bounded queue: at most `capacity` requests inside the pipeline; the rest are refused at once.

The capacity is MAX_POOL_SIZE, or less when the work admitted could not finish in time: a request that
waits past its feature-extraction deadline is a 504 after seconds of work, where a refusal is a 503 in a
millisecond (measured with model 5.0.0, ~1.4 s of extraction per print: a fixed 100 let 124 of 128
requests of a saturation run time out). From the extraction stage's observed latency the queue admits
what `parallelism` workers can extract within 80 % of the deadline, and never fewer than `parallelism`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

_FILL = 0.8  # of the stage deadline the admitted work may fill
_ALPHA = 0.2  # weight of the newest latency in the moving average


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
                 on_refused: Callable[[], None] | None = None, stage_deadline: float | None = None,
                 parallelism: int = 1) -> None:
        self.max_capacity = capacity
        self._stage_deadline = stage_deadline
        self._parallelism = max(1, parallelism)
        self._stage_seconds: float | None = None  # moving average of the extraction stage's latency
        self._depth = 0
        self._closed = False
        self._on_change = on_change
        self._on_refused = on_refused

    @property
    def capacity(self) -> int:
        if self._stage_deadline is None:
            return self.max_capacity
        if not self._stage_seconds:  # nothing measured yet: a burst at start-up must not all time out
            return min(self.max_capacity, 2 * self._parallelism)
        fits = int(_FILL * self._stage_deadline * self._parallelism / self._stage_seconds)
        return max(min(self._parallelism, self.max_capacity), min(self.max_capacity, fits))

    def observe_stage(self, seconds: float) -> None:
        """One extraction's latency, queueing included (what a new request would wait behind)."""
        previous = self._stage_seconds
        self._stage_seconds = seconds if previous is None else previous + _ALPHA * (seconds - previous)

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
        capacity = self.capacity
        if self._closed or self._depth >= capacity:
            if self._on_refused:
                self._on_refused()
            raise QueueFull(capacity)

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
