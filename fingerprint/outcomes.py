"""What the service answers: decisions and their figures, ready for any front end (HTTP, CLI) to
translate, and the reasons it refuses. Scores here are the public ones (rounded, SCORE_DECIMALS);
every decision was taken on the exact score before rounding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fingerprint.gallery.engine_shortlist import EngineStatus
from fingerprint.gallery.health import StoreState
from fingerprint.gallery.impostors import ThresholdEstimate


class NotReady(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SubjectNotFound(Exception):
    pass


class TemplateNotFound(Exception):
    pass


class NoMinutiae(Exception):
    """The template was made by a model that keeps no minutiae."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used for a different enroll request."""


@dataclass(frozen=True)
class Enrolled:
    template_id: str
    subject_id: str
    finger: str | None
    quality: float
    model_version: str
    nfiq2: int | None = None  # NFIQ 2 of the image (None: NFIQ 2 could not assess it)
    replayed: bool = False  # the answer to an earlier request with the same Idempotency-Key


@dataclass(frozen=True)
class Verified:
    subject_id: str
    match: bool
    score: float
    threshold: float
    template_id: str
    model_version: str


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    finger: str | None
    template_id: str
    score: float


@dataclass(frozen=True)
class Identified:
    decision: Literal["match", "no_match"]
    candidates: list[Candidate]
    threshold: float
    model_version: str


@dataclass(frozen=True)
class Status:
    """The admin view of a ready service."""

    status: Literal["ready", "degraded"]
    store: StoreState
    model_name: str
    model_version: str
    sha256: str
    embedding_dim: int
    load_seconds: float
    threshold_fmr_1e2: float
    threshold_fmr_1e3: float
    threshold: ThresholdEstimate
    dense_matching: bool
    precision: str
    probe_minutiae: str
    queue_depth: int
    queue_capacity: int
    queue_max_capacity: int
    gallery_size: int
    stale_templates: dict[str, int]
    bytes_per_template: int
    refused_templates: int
    engine: EngineStatus | None = None  # identify's first stage when a vector engine gives it
