"""Per-environment numbers: the only place staging and production differ."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


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
    # HPA target, requests per second per pod: ~70 % of one pod's measured saturation. Model 5.0.0 on 2 CPUs
    # (LEADER on every print), identify re-scoring 32 candidates on the minutiae: 0.8 identify/s in a slow run
    # where 8 candidates gave 1.1, ~1.7 scaled from the 2.2-2.4 of 8 in quieter runs (`python -m lab.benchmarks.load`)
    requests_per_pod: str = "1000m"
    # a cluster that already runs the Prometheus Operator (kube-prometheus-stack): ServiceMonitor and
    # PrometheusRule objects (the same rules) instead of the bundled Prometheus, Alertmanager and Grafana
    prometheus_operator: bool = False
    operator_namespace: str = "monitoring"
    operator_release: str = "kube-prometheus-stack"  # the `release` label the operator's selectors match
    # MATCH_THRESHOLD measured on this deployment's sensor (`fingerprint calibrate`); None: the model card's
    match_threshold: float | None = None
    # identify's first stage: "memory" (each pod scans its own copy) or "milvus" (charts/milvus.py; the image
    # must be built with `--build-arg EXTRAS=milvus`); `python -m deploy_cdk8s ENV --vector-engine milvus`
    vector_engine: str = "memory"
    milvus_image: str = "docker.io/milvusdb/milvus:v2.6.20"
    milvus_storage: str = "50Gi"
    # FLAT keeps every search vector in memory: ~1.1 GB a million templates at d=256, plus Milvus's own
    milvus_resources: Resources = Resources("1", "4Gi", "4", "8Gi")

    @property
    def prometheus_namespace(self) -> str:
        return self.operator_namespace if self.prometheus_operator else "prometheus"

    @property
    def prometheus_url(self) -> str:
        if self.prometheus_operator:
            return f"http://{self.operator_release}-prometheus.{self.operator_namespace}.svc:9090/"
        return "http://prometheus.prometheus.svc:9090/"

    @property
    def prometheus_service_account(self) -> str:
        return f"{self.operator_release}-prometheus" if self.prometheus_operator else "prometheus"

    @property
    def image_ref(self) -> str:
        ref = f"{self.image}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref

    @property
    def vector_engine_uri(self) -> str:
        return f"http://milvus.{MILVUS_NAMESPACE}.svc:{MILVUS_GRPC_PORT}"

    def with_image(self, reference: str) -> EnvConfig:
        """This environment serving `registry/name:tag[@sha256:<64 hex>]` (what a release pipeline pushed)."""
        ref, _, digest = reference.partition("@")
        name, _, tag = ref.rpartition(":")
        if not (_NAME.fullmatch(name) and _TAG.fullmatch(tag) and (not digest or _DIGEST.fullmatch(digest))):
            raise ValueError(f"not an image reference name:tag[@sha256:<64 hex>]: {reference!r}")
        return replace(self, image=name, tag=tag, digest=digest)


_NAME = re.compile(r"[a-z0-9]+(?:[._\-:/][a-z0-9]+)*")  # registry[:port]/path, lower case
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


# Memory from the load benchmark's RSS with 10,000 templates (model 5.0.0): ~0.7-1.0 GiB ready, 1.2-1.8 GiB
# after a saturation run (LEADER's activations, one set per extraction worker); add ~8 KB per template
# beyond 10,000 (every pod holds the whole gallery).
API_RESOURCES = Resources("500m", "1536Mi", "2", "3Gi")

ENVIRONMENTS: dict[str, EnvConfig] = {
    "staging": EnvConfig(
        name="staging", hpa_min=3, hpa_max=10, log_level="DEBUG",
        api_resources=API_RESOURCES, host="fingerprint.staging.example.com",
        cluster_issuer="letsencrypt-staging",
    ),
    "production": EnvConfig(
        name="production", hpa_min=5, hpa_max=20, log_level="WARNING",
        api_resources=API_RESOURCES, host="fingerprint.example.com",
    ),
}

APP_NAMESPACE = "fingerprint"
APP_NAME = "fingerprint-api"
SECRET_NAME = "fingerprint-api-secrets"  # created out of band (sealed-secrets, external-secrets...): never synthesized
API_PORT = 8000
METRICS_PORT = 9464  # /metrics has its own listener: the API port never serves it
APP_UID = 10001  # >= 10000: UIDs below collide with host users and fail common scanners (checkov CKV_K8S_40)
MILVUS_NAMESPACE = "milvus"
MILVUS_GRPC_PORT = 19530
MILVUS_HTTP_PORT = 9091  # /healthz and /metrics
