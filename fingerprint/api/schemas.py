"""Request and response bodies (msgspec), as they appear in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from fingerprint.gallery.engine_shortlist import EngineStatus
from fingerprint.gallery.health import StoreState
from fingerprint.gallery.identifiers import SUBJECT_ID_PATTERN
from fingerprint.gallery.impostors import ThresholdEstimate

FingerPosition = Literal[
    "unknown",
    "right_thumb", "right_index", "right_middle", "right_ring", "right_little",
    "left_thumb", "left_index", "left_middle", "left_ring", "left_little",
]  # ISO/IEC 19794-2 finger positions 0-10
FINGER_POSITIONS: frozenset[str] = frozenset(FingerPosition.__args__)  # type: ignore[attr-defined]

MAX_TOP_K = 1000

SubjectId = Annotated[str, msgspec.Meta(pattern=SUBJECT_ID_PATTERN, description="1-128 of A-Z a-z 0-9 . _ : @ -")]
Base64Image = Annotated[str, msgspec.Meta(description="PNG, JPEG, JPEG 2000, TIFF, BMP, PGM or WSQ bytes, base64-encoded")]
Dpi = Annotated[float, msgspec.Meta(ge=200, le=2000,
                                    description="capture resolution; default: a WSQ header's PPI, else 500")]
TopK = Annotated[int, msgspec.Meta(ge=1, le=MAX_TOP_K)]
Threshold = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class EnrollJSON(msgspec.Struct, forbid_unknown_fields=True):
    image: Base64Image
    subject_id: SubjectId
    finger: FingerPosition | None = None
    dpi: Dpi | None = None


class VerifyJSON(msgspec.Struct, forbid_unknown_fields=True):
    image: Base64Image
    subject_id: SubjectId
    dpi: Dpi | None = None


class IdentifyJSON(msgspec.Struct, forbid_unknown_fields=True):
    image: Base64Image
    top_k: TopK = 5
    threshold: Threshold | None = None
    dpi: Dpi | None = None


class EnrollResponse(msgspec.Struct):
    template_id: str
    subject_id: str
    finger: str | None
    quality: Score
    model_version: str
    nfiq2: int | None = None  # NFIQ 2 (ISO/IEC 29794-4, 0-100) of the image; null when it could not assess it


class VerifyResponse(msgspec.Struct):
    subject_id: str
    match: bool
    score: Score
    threshold: Threshold
    template_id: str
    model_version: str


class Candidate(msgspec.Struct):
    subject_id: str
    finger: str | None
    template_id: str
    score: Score


class IdentifyResponse(msgspec.Struct):
    decision: Literal["match", "no_match"]
    threshold: Threshold
    candidates: list[Candidate]
    model_version: str


class TemplateInfo(msgspec.Struct):
    template_id: str
    finger: str | None
    model_version: str
    quality: Score
    created_at: datetime
    nfiq2: int | None = None


class SubjectSummaryInfo(msgspec.Struct):
    subject_id: str
    templates: int
    fingers: list[str]
    first_enrolled: datetime
    last_enrolled: datetime


class SubjectPage(msgspec.Struct):
    subjects: list[SubjectSummaryInfo]
    next_cursor: str | None  # pass as `cursor` for the next page; null on the last page


class SubjectResponse(msgspec.Struct):
    subject_id: str
    templates: list[TemplateInfo]


class EraseResponse(msgspec.Struct):
    subject_id: str
    erased_templates: int


class TemplateErased(msgspec.Struct):
    template_id: str
    subject_id: str


class ThresholdInfo(msgspec.Struct):
    """What verify and identify decide with unless a request sets its own, and where it comes from."""

    value: float
    # "gallery": the score `sample_share` of the gallery's own impostor scores reach (TARGET_FMR divided by
    # the model card's impostor tail factor); "model_card": the card's prior, until the gallery holds `needed`
    # impostor scores; "synthetic_floor": the card's synthetic fingers' estimate at `sample_share`, which the
    # service never decides below (`floor`; null when the card has none); "setting": MATCH_THRESHOLD
    source: Literal["gallery", "model_card", "synthetic_floor", "setting"]
    target_fmr: float
    impostor_scores: int
    needed: int
    sample_share: float
    floor: float | None = None

    @classmethod
    def of(cls, t: ThresholdEstimate) -> ThresholdInfo:
        floor = None if t.floor is None else round(t.floor, 4)
        return cls(round(t.value, 4), t.source, t.target_fmr, t.impostor_scores, t.needed, t.sample_share, floor)


class ModelInfo(msgspec.Struct):
    name: str
    version: str
    sha256: str
    embedding_dim: int
    load_seconds: float
    threshold_fmr_1e2: float
    threshold_fmr_1e3: float
    threshold: ThresholdInfo
    dense_matching: bool  # scores compare descriptor grids (see the model card)
    precision: str  # what the network computes in here: "float32" or "bfloat16" (INFERENCE_PRECISION)
    # what finds a probe's LEADER minutiae: "distilled_then_leader" (the default: the distilled network, and
    # LEADER where its answer is not clear, FAST_ACCEPT), "distilled" (FAST_ACCEPT=0: faster, less accurate)
    # or "leader" (FAST_PROBES=false)
    probe_minutiae: str


class QueueInfo(msgspec.Struct):
    depth: int
    capacity: int  # admitted at most now: MAX_POOL_SIZE, or what measured extraction finishes in time
    max_capacity: int  # MAX_POOL_SIZE


class EngineInfo(msgspec.Struct):
    """Identify's first stage from a vector engine (VECTOR_ENGINE): the service still re-scores every
    candidate, and finds in memory what the engine lacks, so its lag costs speed, never answers."""

    name: str
    # connecting | catching_up (scanning in memory until the engine holds the gallery) | synced | unavailable
    state: Literal["connecting", "catching_up", "synced", "unavailable"]
    unwritten: int  # templates the engine lacks yet (found in memory meanwhile)
    unerased: int  # erased templates whose delete has not reached the engine yet
    fallbacks: int  # searches scanned in memory because the engine failed to answer
    last_error: str

    @classmethod
    def of(cls, e: EngineStatus) -> EngineInfo:
        return cls(e.name, e.state, e.unwritten, e.unerased, e.fallbacks, e.last_error)


class GalleryInfo(msgspec.Struct):
    size: int
    stale_templates: dict[str, int]
    bytes_per_template: int  # index memory per template, for capacity planning
    refused_templates: int  # stored rows not loaded: unsealed, tampered or sealed under a missing key (logged)
    # every stored template by model version, counted now (null while the store is unavailable): a
    # `gallery reindex` shows its progress here as the new version's count grows
    templates_by_version: dict[str, int] | None = None
    engine: EngineInfo | None = None  # null: the in-memory scan (VECTOR_ENGINE=memory)


class ReadinessResponse(msgspec.Struct, omit_defaults=True):
    status: Literal["ready", "degraded"]
    store: StoreState
    model_version: str  # which model answers (a rollout shows it changing replica by replica)
    # to an admin key (or with authentication disabled) only: the decision threshold, and stored templates
    # by model version (counted every 15 s: a `gallery reindex` shows its progress here)
    threshold: ThresholdInfo | None = None
    templates_by_version: dict[str, int] | None = None


class StatusResponse(msgspec.Struct):
    status: Literal["ready", "degraded"]
    store: StoreState
    model: ModelInfo
    queue: QueueInfo
    gallery: GalleryInfo


class HealthResponse(msgspec.Struct):
    status: Literal["ok"]


# every code an error can carry (the README's error table lists them by status); clients should still
# accept codes they do not know, which later versions may add
ErrorCode = Literal[
    "bad_request",
    "body_timeout",
    "client_closed_request",
    "corrupt_image",
    "empty_body",
    "empty_image",
    "feature_extraction_timeout",
    "forbidden",
    "gallery_unreadable",
    "http_error",
    "idempotency_key_reused",
    "image_too_large",
    "image_too_small",
    "inference_timeout",
    "internal_error",
    "invalid_cursor",
    "invalid_dpi",
    "invalid_finger",
    "invalid_base64",
    "invalid_image",
    "invalid_image_field",
    "invalid_json",
    "invalid_multipart",
    "invalid_request",
    "invalid_subject_id",
    "invalid_threshold",
    "invalid_top_k",
    "low_quality",
    "method_not_allowed",
    "missing_image",
    "missing_subject_id",
    "no_minutiae",
    "model_loading",
    "model_unavailable",
    "not_found",
    "payload_too_large",
    "queue_full",
    "rate_limited",
    "request_timeout",
    "shutting_down",
    "store_full",
    "store_unavailable",
    "subject_not_found",
    "template_not_found",
    "unauthorized",
    "unsupported_image_format",
    "unsupported_media_type",
]


class ErrorDetail(msgspec.Struct):
    code: ErrorCode
    message: str


class ErrorResponse(msgspec.Struct):
    error: ErrorDetail
