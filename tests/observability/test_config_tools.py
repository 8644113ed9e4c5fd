"""The observability/ files pass the real tools: promtool, amtool, and their own unit tests."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

OBS = Path(__file__).resolve().parents[2] / "observability"
PROM = OBS / "prometheus"


def _run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_promtool_check_config_and_rules() -> None:
    out = _run("promtool", "check", "config", str(PROM / "prometheus.yml"))
    assert "SUCCESS" in out
    out = _run("promtool", "check", "rules", str(PROM / "recording_rules.yml"), str(PROM / "alert_rules.yml"))
    assert "SUCCESS" in out


def test_every_alert_has_unit_tests_that_pass() -> None:
    out = _run("promtool", "test", "rules", str(PROM / "tests" / "alert_rules_test.yml"))
    assert "SUCCESS" in out
    alerts = {r["alert"] for g in yaml.safe_load((PROM / "alert_rules.yml").read_text())["groups"] for r in g["rules"]}
    tests = yaml.safe_load((PROM / "tests" / "alert_rules_test.yml").read_text())["tests"]
    fired = {t["alert_rule_test"][0]["alertname"] for t in tests if t["alert_rule_test"][0]["exp_alerts"]}
    silent = {t["alert_rule_test"][0]["alertname"] for t in tests if not t["alert_rule_test"][0]["exp_alerts"]}
    always = {"Watchdog"}  # the dead man's switch: it is never silent
    assert alerts == fired == silent | always
    assert len(alerts) >= 10


def test_alerts_carry_severity_summary_description_runbook() -> None:
    for group in yaml.safe_load((PROM / "alert_rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            allowed = ("none",) if rule["alert"] == "Watchdog" else ("critical", "warning")
            assert rule["labels"]["severity"] in allowed, rule["alert"]
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]


def test_recording_rules_follow_naming_convention() -> None:
    rules = [r for g in yaml.safe_load((PROM / "recording_rules.yml").read_text())["groups"] for r in g["rules"]]
    assert len(rules) >= 16
    for rule in rules:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_amtool_check_config_and_no_committed_secrets() -> None:
    out = _run("amtool", "check-config", str(OBS / "alertmanager" / "alertmanager.yml"))
    assert "SUCCESS" in out
    cfg = yaml.safe_load((OBS / "alertmanager" / "alertmanager.yml").read_text())
    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keys(v)}
        if isinstance(node, list):
            return {k for v in node for k in keys(v)}
        return set()

    inline_secrets = {"routing_key", "service_key", "api_url", "slack_api_url", "smtp_auth_password", "auth_password"}
    assert not keys(cfg) & inline_secrets  # only the *_file variants, mounted from a Secret
    assert cfg["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    receivers = {r["name"]: r for r in cfg["receivers"]}
    assert any("pagerduty_configs" in r for r in receivers.values())
    assert any("slack_configs" in r for r in receivers.values())
    assert any("email_configs" in r for r in receivers.values())
    assert cfg["inhibit_rules"][0]["equal"] == ["service"]


def test_kubernetes_prometheus_config_uses_pod_discovery_and_the_same_rules() -> None:
    # Debian's promtool is built without Kubernetes discovery, so this file is checked structurally.
    k8s = yaml.safe_load((PROM / "prometheus-kubernetes.yml").read_text())
    local = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert k8s["rule_files"] == local["rule_files"]
    job = next(j for j in k8s["scrape_configs"] if j["job_name"] == "fingerprint-api")
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    assert {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "regex": "fingerprint-api",
            "action": "keep"} in job["relabel_configs"]


def test_dashboard_provisioning_matches_datasource() -> None:
    ds = yaml.safe_load((OBS / "grafana/provisioning/datasources/datasource.yml").read_text())["datasources"][0]
    dash = json.loads((OBS / "grafana/dashboards/fingerprint-api-overview.json").read_text())
    assert len(dash["panels"]) >= 8
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == ds["uid"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == ds["uid"]
            assert target["expr"].strip()


@pytest.mark.parametrize("labels,receivers", [
    (["severity=critical", "environment=production"], "team-email,pagerduty-critical,slack-critical"),
    (["severity=critical", "environment=staging"], "team-email,slack-warnings"),  # staging never pages
    (["severity=warning", "environment=production"], "team-email,slack-warnings"),
    (["alertname=Watchdog", "severity=none", "environment=production"], "heartbeat"),  # dead man's switch
    (["alertname=Watchdog", "severity=none", "environment=staging"], "null"),
])
def test_alertmanager_routes_only_production_to_the_pager(labels: list[str], receivers: str) -> None:
    out = _run("amtool", "config", "routes", "test", "--config.file", str(OBS / "alertmanager" / "alertmanager.yml"), *labels)
    assert out.strip().splitlines()[0] == receivers  # stdout first; amtool warns on stderr
