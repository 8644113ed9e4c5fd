"""Per-environment numbers: the only place staging and production differ."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


@dataclass(frozen=True)
class EnvConfig:
    name: str
    hpa_min: int  # the Deployment sets no replica count: the HPA owns it (a server-side apply would fight it)
    hpa_max: int
    log_level: str
    api_resources: Resources
    host: str
    image: str = "ghcr.io/fingerprint-api/fingerprint-api"
    tag: str = "0.1.0"
    digest: str = ""  # "sha256:..." pins the image; empty keeps the tag only
    cluster_issuer: str = "letsencrypt-prod"
    ingress_namespace: str = "ingress-nginx"
    database_namespace: str = "database"
    database_port: int = 5432
    prometheus_replicas: int = 2
    # MATCH_THRESHOLD measured on this deployment's sensor (`fingerprint calibrate`); None: the model card's
    match_threshold: float | None = None

    @property
    def image_ref(self) -> str:
        ref = f"{self.image}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


ENVIRONMENTS: dict[str, EnvConfig] = {
    "staging": EnvConfig(
        name="staging", hpa_min=3, hpa_max=10, log_level="DEBUG",
        api_resources=Resources("500m", "512Mi", "2", "2Gi"), host="fingerprint.staging.example.com",
        cluster_issuer="letsencrypt-staging",
    ),
    "production": EnvConfig(
        name="production", hpa_min=5, hpa_max=20, log_level="WARNING",
        api_resources=Resources("500m", "512Mi", "2", "2Gi"), host="fingerprint.example.com",
    ),
}

APP_NAMESPACE = "fingerprint"
APP_NAME = "fingerprint-api"
API_PORT = 8000
METRICS_PORT = 9464  # /metrics has its own listener: the API port never serves it
APP_UID = 10001  # >= 10000: UIDs below collide with host users and fail common scanners (checkov CKV_K8S_40)
