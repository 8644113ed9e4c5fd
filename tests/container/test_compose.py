"""docker-compose.yml is valid and wired to the same files, names and ports the app and cluster use.

No container engine runs here: the file is checked by docker-compose 1.29 (`config -q`), the
compose-spec JSON schema, and these structural tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from fingerprint.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_docker_compose_config_and_compose_spec_schema() -> None:
    proc = subprocess.run(["docker-compose", "--env-file", str(REPO / ".env.example"), "-f", str(COMPOSE), "config", "-q"],
                          capture_output=True, text=True, check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    proc = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_services_and_health_ordering() -> None:
    services = _compose()["services"]
    assert set(services) == {"api", "postgres", "prometheus", "alertmanager", "grafana", "elasticsearch", "es-setup",
                             "logstash", "kibana", "filebeat", "milvus"}
    # Kibana starts once kibana_system has its password, the lifecycle policy and the template are loaded
    assert services["kibana"]["depends_on"]["es-setup"]["condition"] == "service_completed_successfully"
    assert services["es-setup"]["entrypoint"] == ["sh", "/templates/setup.sh"]
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"] and "postgres-data" in services["postgres"]["volumes"][0]
    assert "--storage.tsdb.retention.time=15d" in services["prometheus"]["command"]
    assert services["elasticsearch"]["environment"]["xpack.security.enabled"] == "true"


def test_every_mounted_file_exists() -> None:
    for name, svc in _compose()["services"].items():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)


def test_only_the_user_facing_ports_are_published_on_loopback() -> None:
    published = {}
    for name, svc in _compose()["services"].items():
        for p in svc.get("ports", []):
            host, host_port, _ = p.split(":")
            assert host == "127.0.0.1", (name, p)
            published[name] = int(host_port)
    assert published == {"api": 8000, "grafana": 3000, "prometheus": 9090, "kibana": 5601}


def test_images_are_pinned() -> None:
    for name, svc in _compose()["services"].items():
        image = svc["image"]
        assert re.search(r":v?[0-9][\w.\-]*$", image) and not image.endswith(":latest"), (name, image)


def test_api_environment_matches_the_settings_the_app_reads() -> None:
    env = _compose()["services"]["api"]["environment"]
    known = {f.name.upper() for f in fields(Settings)}
    assert set(env) <= known, set(env) - known
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
    example = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    referenced = set(re.findall(r"\$\{(\w+)\}", COMPOSE.read_text()))
    assert referenced <= example, referenced - example


def test_prometheus_and_logstash_wiring_match_service_names_and_ports() -> None:
    prom = yaml.safe_load((REPO / "observability/prometheus/prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "fingerprint-api")
    assert job["static_configs"][0]["targets"] == ["api:9464"]  # the metrics listener, not the API
    assert "EXPOSE 8000 9464" in (REPO / "Containerfile").read_text()
    pipeline = (REPO / "observability/logstash/pipeline/fingerprint.conf").read_text()
    port = re.search(r"beats\s*\{\s*port\s*=>\s*(\d+)", pipeline)
    assert port is not None
    filebeat = yaml.safe_load((REPO / "observability/filebeat/filebeat.yml").read_text())
    assert filebeat["output.logstash"]["hosts"] == [f"logstash:{port.group(1)}"]
    assert "logstash" in _compose()["services"]
