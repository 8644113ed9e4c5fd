"""With `--vector-engine milvus`, the synthesized Milvus validates, passes checkov, and is wired to the API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_cdk8s.synth import synth
from fingerprint.settings import load_settings
from tests.deploy_cdk8s.conftest import find, load_objects

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def with_milvus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth("staging", tmp_path_factory.mktemp("milvus") / "staging", vector_engine="milvus")


def test_milvus_is_synthesized_only_where_selected(with_milvus: Path, synthesized: Path) -> None:
    assert (with_milvus / "milvus.yaml").exists()
    for env in ("staging", "production"):  # the default: each pod scans its own copy
        assert not (synthesized / env / "milvus.yaml").exists()
        assert find(load_objects(synthesized / env), "ConfigMap", "fingerprint-api-config")["data"]["VECTOR_ENGINE"] == "memory"


def test_milvus_validates_strictly_and_passes_checkov(with_milvus: Path) -> None:
    exe = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    proc = subprocess.run([exe, "--strict", str(with_milvus / "milvus.yaml"), str(with_milvus / "application.yaml")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "WARN" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert CHECKOV.exists(), "run `make test` (it installs checkov into .venv-checkov)"
    proc = subprocess.run([str(CHECKOV), "--framework", "kubernetes", "-f", str(with_milvus / "milvus.yaml"),
                           "--output", "json", "--skip-download"], capture_output=True, text=True, check=False)
    report = json.loads(proc.stdout)
    assert not report["results"]["failed_checks"], [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert all(c["check_result"].get("suppress_comment") for c in report["results"]["skipped_checks"])


def _port(objects: list[dict[str, Any]], policy: str, rule: str, namespace: str) -> set[int]:
    spec = find(objects, "NetworkPolicy", policy)["spec"]
    return {p["port"] for r in spec.get(rule, []) for peer in r.get("to" if rule == "egress" else "from", [])
            if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == namespace
            for p in r["ports"]}


def test_the_api_reaches_milvus_and_nothing_else_does(with_milvus: Path) -> None:
    objects = load_objects(with_milvus)
    config = find(objects, "ConfigMap", "fingerprint-api-config")["data"]
    settings = load_settings({k: v for k, v in config.items() if k.startswith("VECTOR_ENGINE")})
    assert settings.vector_engine == "milvus"
    host, port = settings.vector_engine_uri.removeprefix("http://").split(":")
    name, namespace = host.split(".")[:2]
    service = find(objects, "Service", name)
    assert service["metadata"]["namespace"] == namespace and int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert int(port) in _port(objects, "fingerprint-api-netpol", "egress", namespace)
    assert _port(objects, "milvus-netpol", "ingress", "fingerprint") == {int(port)}  # the API only
    statefulset = find(objects, "StatefulSet", name)
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] and statefulset["spec"]["replicas"] == 1
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


def test_compose_runs_the_same_milvus_with_the_same_etcd_file(with_milvus: Path) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    milvus = compose["milvus"]
    objects = load_objects(with_milvus)
    container = find(objects, "StatefulSet", "milvus")["spec"]["template"]["spec"]["containers"][0]
    assert milvus["profiles"] == ["milvus"] and milvus["command"] == container["command"]
    assert milvus["environment"] == {e["name"]: e["value"] for e in container["env"]}
    mounted = [v.split(":")[0] for v in milvus["volumes"] if "embedEtcd" in v]
    assert find(objects, "ConfigMap", "milvus-config")["data"]["embedEtcd.yaml"] == (REPO / mounted[0]).read_text()
    assert compose["api"]["environment"]["VECTOR_ENGINE_URI"] == "http://milvus:19530"
