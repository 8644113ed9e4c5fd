"""For clusters that already run the Prometheus Operator (kube-prometheus-stack): the API's monitoring as
its objects, from the same observability/ files, instead of a second Prometheus, Alertmanager and Grafana.

- ServiceMonitor (in the operator's namespace, selecting the API's Service): its metrics port (the job
  label is the Service's name, `fingerprint-api`, as the rules expect);
- PrometheusRule: the recording and alerting groups of observability/prometheus, unchanged;
- the dashboard as a ConfigMap the stack's Grafana sidecar loads (label `grafana_dashboard`);
- prometheus-adapter against the operator's Prometheus, for the HPA's request-rate metric.
Alertmanager routing stays the operator's: load observability/alertmanager/alertmanager.yml into it.
"""

from __future__ import annotations

import yaml
from cdk8s import ApiObject, ApiObjectMetadata, Chart, JsonPatch
from cdk8s_plus_33 import k8s
from constructs import Construct

from deploy_cdk8s.charts.builders import meta
from deploy_cdk8s.charts.metrics_adapter import metrics_adapter
from deploy_cdk8s.config import APP_NAME, APP_NAMESPACE, EnvConfig
from deploy_cdk8s.observability_files import read

MONITORING_API = "monitoring.coreos.com/v1"


def rule_groups() -> list[dict[str, object]]:
    """The groups of the one source, recording rules first (the alerts read them)."""
    return [g for name in ("recording_rules.yml", "alert_rules.yml")
            for g in yaml.safe_load(read(f"prometheus/{name}"))["groups"]]


class OperatorMonitoringChart(Chart):
    def __init__(self, scope: Construct, env: EnvConfig) -> None:
        super().__init__(scope, "monitoring", disable_resource_name_hashes=True)
        selected = {"release": env.operator_release}  # what the operator's selectors pick up
        def custom(cid: str, kind: str, spec: dict[str, object]) -> None:  # no typed class for the operator's kinds
            obj = ApiObject(self, cid, api_version=MONITORING_API, kind=kind, metadata=ApiObjectMetadata(
                name=APP_NAME, namespace=env.operator_namespace, labels=selected))
            obj.add_json_patch(JsonPatch.add("/spec", spec))

        custom("service-monitor", "ServiceMonitor", {
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP_NAME}},
            "namespaceSelector": {"matchNames": [APP_NAMESPACE]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}]})
        custom("rules", "PrometheusRule", {"groups": rule_groups()})
        k8s.KubeConfigMap(self, "dashboards", metadata=meta(
            "fingerprint-api-dashboards", env.operator_namespace, extra_labels={"grafana_dashboard": "1"}),
            data={"fingerprint-api-overview.json": read("grafana/dashboards/fingerprint-api-overview.json")})
        metrics_adapter(self, env.operator_namespace, env.prometheus_url)
