"""Per-request deadlines, and the stage timeouts they bound."""

from __future__ import annotations

import time
from dataclasses import dataclass


class StageTimeout(Exception):
    """A stage ran out of time; `stage` names it in the error code (e.g. inference_timeout)."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"{stage} did not finish in time")
        self.stage = stage


@dataclass(frozen=True)
class Deadline:
    expires_at: float  # time.monotonic() seconds

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at

    def budget(self, stage_timeout: float) -> tuple[float, str]:
        """Seconds the next stage may take, and which limit binds: the stage's or the request's."""
        left = self.remaining()
        return (stage_timeout, "stage") if stage_timeout < left else (left, "request")
