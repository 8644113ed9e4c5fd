"""Every setting of the service, read from the environment here and nowhere else."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fingerprint.model.comparator import GRID_SHORTLIST, MINUTIAE_SHORTLIST, SKETCH_SHORTLIST
from fingerprint.model.network import PRECISIONS
from fingerprint.model.weights import DEFAULT_WEIGHTS


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite in data_dir; postgresql://... for a shared gallery
    gallery_sync_interval: float = 1.0  # seconds: the bound on replica staleness if notifications are lost
    # identify's first stage: "memory" scans each replica's own copy; "milvus" asks the Milvus at
    # VECTOR_ENGINE_URI (http://host:19530, or a .db file for embedded milvus-lite), the re-rank staying
    # here. Not MILVUS_URI: pymilvus reads that variable itself as it is imported, and refuses a file
    vector_engine: str = "memory"
    vector_engine_uri: str = ""
    vector_engine_token_file: Path | None = None  # "user:password" or an API key, in a file like every other secret
    weights_path: Path = DEFAULT_WEIGHTS
    workers: int = 4  # threads decoding and preprocessing images
    # requests admitted to the pipeline at once: ~8 a core keeps an admitted identify's p99 under 2 s in a 2x
    # overload (lab.benchmarks.sweep, docs/performance.md); 100 let it reach 2.9 s for no more throughput
    max_pool_size: int = 16
    request_timeout: float = 30.0
    feature_extraction_timeout: float = 5.0
    inference_timeout: float = 10.0
    max_batch_size: int = 16
    max_batch_wait_ms: float = 5.0
    torch_threads: int = 0  # what a LEADER pass may use when alone (other stages use one); 0: one per core
    inference_precision: str = "auto"  # auto: bfloat16 where the CPU computes it natively (model card)
    # probes find LEADER's minutiae with the card's distilled network first (a fraction of LEADER's time);
    # enrolment always runs LEADER, so templates are the same either way
    fast_probes: bool = True
    # with fast_probes, a verify or identify whose best score is below this many times the threshold it
    # decides with (or, identify, where another subject also reaches the threshold) is compared again on
    # minutiae LEADER finds, so doubtful answers are LEADER's (chosen on seven sets, model card); 0: the
    # distilled network always decides (faster, less accurate)
    fast_accept: float = 1.1
    # and one whose best score stays below this many times the threshold stands as no match: LEADER would
    # not lift it that far (chosen on seven sets, model card); 0: every answer below FAST_ACCEPT is compared again
    fast_reject: float = 0.4
    compute_niceness: int = 10  # preprocessing/inference threads run this far below the event loop (Linux)
    min_enroll_quality: float = 0.3
    # keep each enrolment image, sealed with the template key, so `fingerprint gallery reindex` can build a
    # later model's templates without recapture; erased with its template
    keep_enrollment_images: bool = False
    min_enroll_nfiq2: int = 0  # NFIQ 2 (0-100) an enrolment needs; 0: computed and returned, never refused
    # minutiae an enrolment needs (LEADER's where the model finds them): a template with fewer outscores
    # the true mate of other fingers' probes (model card); 0 never refuses
    min_enroll_minutiae: int = 10
    # the score verify and identify decide with; unset: the score that TARGET_FMR of the gallery's own
    # impostor scores reach (gallery/impostors.py), the model card's prior until the gallery can tell
    match_threshold: float | None = None
    # identify candidates re-scored on the minutiae: fewer is faster, and misses mates the grids rank lower
    identify_minutiae_shortlist: int = MINUTIAE_SHORTLIST
    # of those, the best by grid and minutiae sketch that are compared in full; 0: all of them (slower)
    identify_sketch_shortlist: int = SKETCH_SHORTLIST
    target_fmr: float = 0.001
    max_body_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    shutdown_grace: float = 20.0  # seconds in-flight requests get to finish after SIGTERM
    shutdown_delay: float = 2.0  # seconds readiness reports 503 before the listener closes
    log_level: str = "INFO"
    enable_cors: bool = False
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    enable_metrics: bool = True
    api_keys_file: Path | None = None  # JSON of salted key hashes (fingerprint create-key); unset = no auth
    allow_unauthenticated: bool = False  # required to run without API keys on a non-loopback address
    template_key_file: Path | None = None  # AES-256-GCM keys for templates at rest (fingerprint new-template-key)
    rate_limit_per_second: int = 100  # per API key, and per client address for requests without a valid key; 0 disables
    # proxies (IPs or CIDRs) whose X-Forwarded-For names the real client; none by default, so a client
    # cannot choose its own address (and rate-limit bucket) by sending the header
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    header_timeout: float = 10.0  # seconds a connection gets to send a request's headers
    body_timeout: float = 30.0  # seconds a request gets to send its whole body
    # /metrics has its own listener, never the API's: counts and gallery size are for Prometheus, not clients
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    score_decimals: int = 2  # scores are returned this coarse: finer steps help an attacker hill-climb
    service_name: str = "fingerprint-api"
    # OTLP/HTTP collector (e.g. http://otel-collector:4318) that receives every request's span; off when empty
    otel_exporter_otlp_endpoint: str = ""

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gallery.sqlite3"

    def with_overrides(self, **kwargs: Any) -> Settings:
        """A copy with the given values, checked like the environment (a CLI flag cannot skip a rule)."""
        settings = replace(self, **{k: v for k, v in kwargs.items() if v is not None})
        _validate(settings)
        return settings


def _parse(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float", "float | None"):
            return float(raw)
        if kind in (bool, "bool"):
            value = raw.strip().lower()
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind in (Path, "Path", "Path | None"):
            return Path(raw)
        if kind in ("tuple[str, ...]",):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise SettingsError(f"environment variable {name}={raw!r} is not a valid {kind}") from exc
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from environment variables named like the fields in upper case (e.g. MAX_POOL_SIZE)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = f.name.upper()
        if name in env:
            values[f.name] = _parse(name, env[name], f.type)
    settings = Settings(**values)
    _validate(settings)
    return settings


def is_loopback(host: str) -> bool:
    """True only for addresses that cannot be reached from another machine ('', '0', '::' are every interface)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validate(s: Settings) -> None:
    positive = ("workers", "max_pool_size", "request_timeout", "feature_extraction_timeout", "inference_timeout",
                "max_batch_size", "max_body_bytes", "max_image_pixels", "header_timeout", "body_timeout")
    for name in positive:
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name.upper()} must be positive")
    if s.match_threshold is not None and not 0.0 <= s.match_threshold <= 1.0:
        raise SettingsError("MATCH_THRESHOLD must be within [0, 1]")
    if s.otel_exporter_otlp_endpoint and not s.otel_exporter_otlp_endpoint.startswith(("http://", "https://")):
        raise SettingsError("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL")
    if not 0.0 < s.target_fmr <= 0.5:
        raise SettingsError("TARGET_FMR must be within (0, 0.5]")
    if not 0.0 <= s.fast_accept <= 100.0:
        raise SettingsError("FAST_ACCEPT must be within [0, 100] (0: the distilled network always decides)")
    if not 0.0 <= s.fast_reject <= 1.0:
        raise SettingsError("FAST_REJECT must be within [0, 1] (0: a fast answer below FAST_ACCEPT never stands)")
    if not 0.0 <= s.min_enroll_quality <= 1.0:
        raise SettingsError("MIN_ENROLL_QUALITY must be within [0, 1]")
    if s.keep_enrollment_images and s.template_key_file is None:
        raise SettingsError("KEEP_ENROLLMENT_IMAGES needs TEMPLATE_KEY_FILE: kept images are sealed like templates")
    if not 0 <= s.min_enroll_nfiq2 <= 100:
        raise SettingsError("MIN_ENROLL_NFIQ2 must be within [0, 100]")
    if not 1 <= s.identify_minutiae_shortlist <= GRID_SHORTLIST:
        raise SettingsError(f"IDENTIFY_MINUTIAE_SHORTLIST must be within [1, {GRID_SHORTLIST}]")
    if not 0 <= s.identify_sketch_shortlist <= GRID_SHORTLIST:
        raise SettingsError(f"IDENTIFY_SKETCH_SHORTLIST must be within [0, {GRID_SHORTLIST}] (0: off)")
    if not 0 <= s.min_enroll_minutiae <= 1000:
        raise SettingsError("MIN_ENROLL_MINUTIAE must be within [0, 1000]")
    if s.api_keys_file is None and not s.allow_unauthenticated and not is_loopback(s.host):
        raise SettingsError(f"HOST={s.host!r} without API_KEYS_FILE: set API_KEYS_FILE, or ALLOW_UNAUTHENTICATED=true "
                            "to expose an unauthenticated API deliberately")
    if s.vector_engine not in ("memory", "milvus"):
        raise SettingsError(f"VECTOR_ENGINE {s.vector_engine!r} is not one of memory, milvus")
    if s.vector_engine == "milvus" and not s.vector_engine_uri:
        raise SettingsError("VECTOR_ENGINE=milvus needs VECTOR_ENGINE_URI (http://host:19530, or a file for milvus-lite)")
    for name in ("api_keys_file", "template_key_file", "vector_engine_token_file"):
        path = getattr(s, name)
        if path is not None and not Path(path).is_file():
            raise SettingsError(f"{name.upper()}={path} does not exist or is not a file")
    if not 0 <= s.metrics_port <= 65535:
        raise SettingsError("METRICS_PORT must be a port number (0: any free port)")
    if not 0 <= s.score_decimals <= 6:
        raise SettingsError("SCORE_DECIMALS must be within [0, 6]")
    for proxy in s.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise SettingsError(f"TRUSTED_PROXIES entry {proxy!r} is not an IP address or network") from exc
    if s.inference_precision not in PRECISIONS:
        raise SettingsError(f"INFERENCE_PRECISION {s.inference_precision!r} is not one of {', '.join(PRECISIONS)}")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"LOG_LEVEL {s.log_level!r} is not a log level")
