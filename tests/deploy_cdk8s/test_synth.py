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
                                "INFERENCE_TIMEOUT")} == {"WORKERS": "2", "MAX_POOL_SIZE": "16", "REQUEST_TIMEOUT": "30",
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
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1536Mi"}, "limits": {"cpu": "2", "memory": "3Gi"}}
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
    assert {"nginx.ingress.kubernetes.io/limit-connections", "nginx.ingress.kubernetes.io/limit-rps"} <= set(
        ing["metadata"]["annotations"])  # a flood is cut per client address before it reaches a pod

    hpa = find(objs, "HorizontalPodAutoscaler", "fingerprint-api-hpa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (hpa_min, hpa_max)
    resource = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
                for m in hpa["spec"]["metrics"] if m["type"] == "Resource"}
    assert resource == {"cpu": 70}  # memory does not fall as pods are added: it cannot decide

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
    prom_args = prom_set["template"]["spec"]["containers"][0]["args"]
    assert {"--storage.tsdb.retention.time=15d", "--storage.tsdb.retention.size=40GB"} <= set(prom_args)
    assert prom_set["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert prom_set["template"]["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert find(objs, "PodDisruptionBudget", "prometheus-pdb")["spec"]["maxUnavailable"] == 1
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


@pytest.mark.parametrize("env", ["staging", "production"])
def test_the_hpa_request_rate_metric_is_served_by_a_deployed_adapter(synthesized: Path, env: str) -> None:
    from deploy_cdk8s.charts.metrics_adapter import RATE_METRIC
    from deploy_cdk8s.config import ENVIRONMENTS

    objs = load_objects(synthesized / env)
    hpa = find(objs, "HorizontalPodAutoscaler", "fingerprint-api-hpa")["spec"]
    pods = next(m["pods"] for m in hpa["metrics"] if m["type"] == "Pods")
    assert pods["metric"]["name"] == RATE_METRIC
    assert pods["target"]["averageValue"] == ENVIRONMENTS[env].requests_per_pod == "1000m"
    assert f'as: "{RATE_METRIC}"' in _data(objs, "prometheus-adapter-config")["config.yaml"]
    api = find(objs, "APIService", "v1beta1.custom.metrics.k8s.io")["spec"]
    assert (api["group"], api["version"]) == ("custom.metrics.k8s.io", "v1beta1")
    svc = find(objs, "Service", api["service"]["name"])
    assert svc["metadata"]["namespace"] == api["service"]["namespace"]
    dep = find(objs, "Deployment", "prometheus-adapter")["spec"]
    assert svc["spec"]["selector"].items() <= dep["template"]["metadata"]["labels"].items()
    container = dep["template"]["spec"]["containers"][0]
    assert "--prometheus-url=http://prometheus.prometheus.svc:9090/" in container["args"]
    served_port = svc["spec"]["ports"][0]["targetPort"]
    assert served_port == container["ports"][0]["containerPort"]
    # the API server reaches the adapter's port; the observability policy (its own namespaces only) does not apply
    policy = find(objs, "NetworkPolicy", "prometheus-adapter-ingress")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= dep["template"]["metadata"]["labels"].items()
    assert policy["ingress"] == [{"ports": [{"port": served_port, "protocol": "TCP"}]}]
    assert dep["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] != "observability"
    hpa_reader = find(objs, "ClusterRoleBinding", "hpa-controller-custom-metrics")
    assert hpa_reader["subjects"] == [{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler",
                                       "namespace": "kube-system"}]
    assert find(objs, "ClusterRole", "custom-metrics-reader")["rules"][0]["apiGroups"] == ["custom.metrics.k8s.io"]
    assert find(objs, "RoleBinding", "prometheus-adapter-auth-reader")["metadata"]["namespace"] == "kube-system"
    assert find(objs, "ClusterRoleBinding", "prometheus-adapter:system:auth-delegator")["roleRef"]["name"] == \
        "system:auth-delegator"


def test_with_the_prometheus_operator_the_same_rules_become_its_objects(tmp_path: Path) -> None:
    import yaml

    from deploy_cdk8s.synth import synth

    objs = load_objects(synth("production", tmp_path, prometheus_operator=True))
    kinds = {o["kind"] for o in objs}
    assert "StatefulSet" not in {o["kind"] for o in objs if o["metadata"].get("namespace") == "prometheus"}
    assert not any(o["metadata"]["name"] in ("prometheus", "alertmanager", "grafana") for o in objs
                   if o["kind"] in ("StatefulSet", "Deployment"))
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    rule = find(objs, "PrometheusRule", "fingerprint-api")
    assert rule["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    source = [g for name in ("recording_rules.yml", "alert_rules.yml")
              for g in yaml.safe_load((OBS / "prometheus" / name).read_text())["groups"]]
    assert rule["spec"]["groups"] == source  # one source: the bundled Prometheus loads the same files
    monitor = find(objs, "ServiceMonitor", "fingerprint-api")["spec"]
    service = find(objs, "Service", "fingerprint-api")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    # the operator's Prometheus, not the bundled one, reaches the metrics port and feeds the adapter
    policy = find(objs, "NetworkPolicy", "fingerprint-api-netpol")["spec"]
    assert {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for p in policy["ingress"][1]["from"]} == {"monitoring"}
    adapter = find(objs, "Deployment", "prometheus-adapter")
    assert adapter["metadata"]["namespace"] == "monitoring"
    assert ("--prometheus-url=http://kube-prometheus-stack-prometheus.monitoring.svc:9090/"
            in adapter["spec"]["template"]["spec"]["containers"][0]["args"])
    dashboards = find(objs, "ConfigMap", "fingerprint-api-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
