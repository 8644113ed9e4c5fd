"""Synthesis is deterministic, validates strictly, and carries the numbers each environment promises."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy_cdk8s.synth import synth_all
from tests.deploy_cdk8s.conftest import find, load_objects

REPO = Path(__file__).resolve().parents[2]
OBS = REPO / "observability"


def test_synthesis_is_deterministic(synthesized: Path, tmp_path: Path) -> None:
    synth_all(tmp_path)
    for env in ("staging", "production"):
        cmp = filecmp.dircmp(synthesized / env, tmp_path / env)
        assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
        for name in cmp.common_files:
            assert (synthesized / env / name).read_bytes() == (tmp_path / env / name).read_bytes()


def test_every_object_validates_strictly_without_warnings(synthesized: Path) -> None:
    files = sorted(str(p) for p in synthesized.glob("*/*.yaml"))
    exe = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    proc = subprocess.run([exe, "--strict", *files], capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "WARN" not in out and "ERROR" not in out, out
    assert out.count("passed") == sum(len(load_objects(synthesized / e)) for e in ("staging", "production"))


@pytest.mark.parametrize("env,hpa_min,hpa_max,level", [
    ("staging", 3, 10, "DEBUG"), ("production", 5, 20, "WARNING"),
])
def test_application_numbers(synthesized: Path, env: str, hpa_min: int, hpa_max: int, level: str) -> None:
    objs = load_objects(synthesized / env)
    cfg = find(objs, "ConfigMap", "fingerprint-api-config")["data"]
    assert cfg["LOG_LEVEL"] == level
    assert {k: cfg[k] for k in ("WORKERS", "MAX_POOL_SIZE", "REQUEST_TIMEOUT", "FEATURE_EXTRACTION_TIMEOUT",
                                "INFERENCE_TIMEOUT")} == {"WORKERS": "4", "MAX_POOL_SIZE": "100", "REQUEST_TIMEOUT": "30",
                                                          "FEATURE_EXTRACTION_TIMEOUT": "5", "INFERENCE_TIMEOUT": "10"}
    assert {"ENABLE_CORS", "ENABLE_METRICS"} <= set(cfg)
    dep = find(objs, "Deployment", "fingerprint-api")
    spec = dep["spec"]
    assert "replicas" not in spec  # the HPA owns the count: a server-side apply must not reset it
    assert cfg["TORCH_THREADS"] == "2"  # the CPU limit, not the node's cores
    db = next(e for e in spec["template"]["spec"]["containers"][0]["env"] if e["name"] == "DATABASE_URL")
    assert db["valueFrom"]["secretKeyRef"]["optional"] is False  # never a silent per-pod SQLite gallery
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert (c["livenessProbe"]["initialDelaySeconds"], c["livenessProbe"]["periodSeconds"]) == (30, 10)
    assert c["readinessProbe"]["httpGet"]["path"] == "/api/v1/models/status"
    assert (c["readinessProbe"]["initialDelaySeconds"], c["readinessProbe"]["periodSeconds"]) == (10, 5)
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    sc = c["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["securityContext"]["runAsUser"] >= 10000 and pod["securityContext"]["runAsNonRoot"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "fingerprint-api"
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0][
        "podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["topologySpreadConstraints"]
    assert all(e.get("valueFrom", {}).get("secretKeyRef") for e in c.get("env", []))  # no secret values inline

    svc = find(objs, "Service", "fingerprint-api")["spec"]
    assert svc["type"] == "ClusterIP"
    assert {(p["name"], p["port"]) for p in svc["ports"]} == {("http", 80), ("metrics", 9464)}
    ing = find(objs, "Ingress", "fingerprint-api-ingress")
    assert "cert-manager.io/cluster-issuer" in ing["metadata"]["annotations"] and ing["spec"]["tls"]

    hpa = find(objs, "HorizontalPodAutoscaler", "fingerprint-api-hpa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (hpa_min, hpa_max)
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"}
    resource = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
                for m in hpa["spec"]["metrics"] if m["type"] == "Resource"}
    assert resource == {"cpu": 70}  # memory does not fall as pods are added: it cannot decide
    assert metrics["Pods"]["pods"]["target"]["averageValue"] == "100"

    assert find(objs, "PodDisruptionBudget", "fingerprint-api-pdb")["spec"]["minAvailable"] == 2
    np = find(objs, "NetworkPolicy", "fingerprint-api-netpol")["spec"]
    ingress_ns = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in np["ingress"][0]["from"]}
    assert ingress_ns == {"ingress-nginx", "prometheus"}
    egress_ports = sorted(p["port"] for rule in np["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 443, 5432]

    role = find(objs, "Role", "fingerprint-api-reader")
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"configmaps", "secrets", "pods", "events"}
    assert find(objs, "ClusterRole", "fingerprint-api-metrics-reader")["rules"][0]["nonResourceURLs"] == ["/metrics"]


def _data(objs: list[dict[str, Any]], name: str) -> dict[str, str]:
    return find(objs, "ConfigMap", name)["data"]


@pytest.mark.parametrize("env", ["staging", "production"])
def test_observability_files_are_byte_equal_to_the_source(synthesized: Path, env: str) -> None:
    objs = load_objects(synthesized / env)
    prom = _data(objs, "prometheus-config")
    assert prom["alert_rules.yml"] == (OBS / "prometheus/alert_rules.yml").read_text()
    assert prom["recording_rules.yml"] == (OBS / "prometheus/recording_rules.yml").read_text()
    # the one source, with the environment among the external labels: staging's alerts never page
    assert prom["prometheus.yml"] == (OBS / "prometheus/prometheus-kubernetes.yml").read_text().replace(
        "    cluster: kubernetes\n", f"    cluster: kubernetes\n    environment: {env}\n", 1)
    assert _data(objs, "grafana-dashboards")["fingerprint-api-overview.json"] == \
        (OBS / "grafana/dashboards/fingerprint-api-overview.json").read_text()
    assert _data(objs, "logstash-pipeline")["fingerprint.conf"] == (OBS / "logstash/pipeline/fingerprint.conf").read_text()
    assert _data(objs, "alertmanager-config")["alertmanager.yml"] == (OBS / "alertmanager/alertmanager.yml").read_text()
    prom_set = find(objs, "StatefulSet", "prometheus")["spec"]
    assert prom_set["replicas"] == 2
    assert "--storage.tsdb.retention.time=15d" in prom_set["template"]["spec"]["containers"][0]["args"]
    assert "adapter" in _data(objs, "prometheus-adapter-config")["config.yaml"]
    job = find(objs, "Job", "elasticsearch-setup")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["sh", "/templates/setup.sh"]
    assert _data(objs, "elasticsearch-templates")["setup.sh"] == (OBS / "elasticsearch/setup.sh").read_text()
    for name in ("elasticsearch", "logstash", "kibana"):
        assert any(o["metadata"]["name"] == name and o["metadata"]["namespace"] == "logging" for o in objs
                   if o["kind"] in ("Deployment", "StatefulSet"))
    assert find(objs, "DaemonSet", "filebeat")["metadata"]["namespace"] == "logging"


@pytest.mark.parametrize("env", ["staging", "production"])
def test_every_workload_has_resources_probes_and_security(synthesized: Path, env: str) -> None:
    for o in load_objects(synthesized / env):
        if o["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        pod = o["spec"]["template"]["spec"]
        assert pod.get("securityContext", {}).get("seccompProfile") == {"type": "RuntimeDefault"}, o["metadata"]["name"]
        for c in pod["containers"]:
            assert c["resources"]["limits"] and c["resources"]["requests"], c["name"]
            assert c["livenessProbe"] and c["readinessProbe"], c["name"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], c["name"]
            assert ":latest" not in c["image"] and ":" in c["image"], c["name"]


def test_a_calibrated_match_threshold_reaches_the_config_map_only_when_set() -> None:
    from dataclasses import replace

    from deploy_cdk8s.charts.application import app_settings
    from deploy_cdk8s.config import ENVIRONMENTS
    from fingerprint.settings import load_settings

    production = ENVIRONMENTS["production"]
    assert "MATCH_THRESHOLD" not in app_settings(production)  # the model card's threshold by default
    calibrated = app_settings(replace(production, match_threshold=0.781))
    assert calibrated["MATCH_THRESHOLD"] == "0.781"
    assert load_settings({"MATCH_THRESHOLD": calibrated["MATCH_THRESHOLD"]}).match_threshold == 0.781
