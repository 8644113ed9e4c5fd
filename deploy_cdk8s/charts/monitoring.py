"""Prometheus (2 replicas, 15-day retention, pod discovery), Alertmanager, Grafana, prometheus-adapter."""

from __future__ import annotations

from cdk8s import Chart
from cdk8s_plus_33 import k8s
from constructs import Construct

from deploy_cdk8s.charts.builders import (
    config_volume,
    container_security,
    http_probe,
    meta,
    namespace_policy,
    pod_security,
    port,
    resources,
    skip,
    tmp_volume,
)
from deploy_cdk8s.charts.metrics_adapter import metrics_adapter
from deploy_cdk8s.config import APP_NAMESPACE, EnvConfig, Resources
from deploy_cdk8s.observability_files import read

PROMETHEUS_IMAGE = "quay.io/prometheus/prometheus:v2.55.1"
ALERTMANAGER_IMAGE = "quay.io/prometheus/alertmanager:v0.27.0"
GRAFANA_IMAGE = "docker.io/grafana/grafana:11.3.1"
PART = "observability"
_IMAGE_SKIP = ("CKV_K8S_43", "upstream image pinned by version tag")

ENVIRONMENT_ANCHOR = "    cluster: kubernetes\n"


def with_environment(config: str, environment: str) -> str:
    """The one Prometheus config, with this environment's name among its external labels: every alert then
    carries it, and Alertmanager routes staging's away from the pager."""
    if ENVIRONMENT_ANCHOR not in config:
        raise ValueError("prometheus-kubernetes.yml lost its `cluster: kubernetes` external label")
    return config.replace(ENVIRONMENT_ANCHOR, f"{ENVIRONMENT_ANCHOR}    environment: {environment}\n", 1)


def _stateless(scope: Construct, cid: str, name: str, ns: str, image: str, replicas: int, args: list[str],
               container_port: int, probe_path: str, volumes: list[k8s.Volume], mounts: list[k8s.VolumeMount],
               res: Resources, uid: int, service_account: str | None = None, env: list[k8s.EnvVar] | None = None,
               stateful_volume: str | None = None, live_path: str | None = None) -> None:
    selector = {"app.kubernetes.io/name": name}
    container = k8s.Container(
        name=name, image=image, image_pull_policy="Always", args=args, env=env,
        ports=[k8s.ContainerPort(name="http", container_port=container_port)],
        resources=resources(res), security_context=container_security(),
        liveness_probe=http_probe(live_path or probe_path, "http", initial=30, period=15),
        readiness_probe=http_probe(probe_path, "http", initial=5, period=10),
        volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp"), *mounts],
    )
    pod = k8s.PodTemplateSpec(
        metadata=k8s.ObjectMeta(labels={**meta(name, ns, part_of=PART).labels, **selector}),  # type: ignore[dict-item]
        spec=k8s.PodSpec(service_account_name=service_account or "default",
                         automount_service_account_token=service_account is not None,
                         security_context=pod_security(uid), containers=[container],
                         volumes=[tmp_volume(), *volumes],
                         # replicas on one node would fail together
                         topology_spread_constraints=[k8s.TopologySpreadConstraint(
                             max_skew=1, topology_key="kubernetes.io/hostname", when_unsatisfiable="ScheduleAnyway",
                             label_selector=k8s.LabelSelector(match_labels=selector))] if replicas > 1 else None))
    notes = [_IMAGE_SKIP]
    if service_account:
        notes.append(("CKV_K8S_38", "Prometheus needs its token for Kubernetes discovery"))
    if uid < 10000:
        notes.append(("CKV_K8S_40", f"the upstream image owns its files as UID {uid}"))
    if any(e.value_from for e in env or []):
        notes.append(("CKV_K8S_35", "Grafana reads the admin password once from the environment"))
    annotations = skip(*notes)
    if stateful_volume:
        k8s.KubeStatefulSet(scope, cid, metadata=meta(name, ns, annotations=annotations, part_of=PART),
                            spec=k8s.StatefulSetSpec(
            replicas=replicas, service_name=name, selector=k8s.LabelSelector(match_labels=selector), template=pod,
            volume_claim_templates=[k8s.KubePersistentVolumeClaimProps(
                metadata=k8s.ObjectMeta(name=stateful_volume), spec=k8s.PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=k8s.VolumeResourceRequirements(requests={"storage": k8s.Quantity.from_string("50Gi")})))]))
    else:
        k8s.KubeDeployment(scope, cid, metadata=meta(name, ns, annotations=annotations, part_of=PART),
                           spec=k8s.DeploymentSpec(replicas=replicas, selector=k8s.LabelSelector(match_labels=selector),
                                                   template=pod))
    if replicas > 1:  # a drain takes one replica at a time
        k8s.KubePodDisruptionBudget(scope, f"{cid}-pdb", metadata=meta(f"{name}-pdb", ns, part_of=PART),
                                    spec=k8s.PodDisruptionBudgetSpec(max_unavailable=k8s.IntOrString.from_number(1),
                                                                     selector=k8s.LabelSelector(match_labels=selector)))
    k8s.KubeService(scope, f"{cid}-service", metadata=meta(name, ns, part_of=PART), spec=k8s.ServiceSpec(
        selector=selector, ports=[k8s.ServicePort(name="http", port=container_port, target_port=port(container_port))]))


class MonitoringChart(Chart):
    def __init__(self, scope: Construct, env: EnvConfig) -> None:
        super().__init__(scope, "monitoring", disable_resource_name_hashes=True)
        prom_ns, graf_ns = "prometheus", "grafana"
        for ns in (prom_ns, graf_ns):
            k8s.KubeNamespace(self, f"ns-{ns}", metadata=k8s.ObjectMeta(
                name=ns, labels={"kubernetes.io/metadata.name": ns}))
        self._prometheus(env, prom_ns)
        self._alertmanager(prom_ns)
        self._grafana(graf_ns)
        namespace_policy(self, prom_ns, ingress_from=[prom_ns, graf_ns])
        namespace_policy(self, graf_ns, ingress_from=[graf_ns, env.ingress_namespace])
        metrics_adapter(self, prom_ns, env.prometheus_url)

    def _prometheus(self, env: EnvConfig, ns: str) -> None:
        k8s.KubeServiceAccount(self, "prom-sa", metadata=meta("prometheus", ns, part_of=PART))
        k8s.KubeClusterRole(self, "prom-role", metadata=meta("prometheus-discovery", None, part_of=PART), rules=[
            k8s.PolicyRule(api_groups=[""], resources=["pods", "services", "endpoints", "nodes", "nodes/metrics"],
                           verbs=["get", "list", "watch"]),
            k8s.PolicyRule(non_resource_ur_ls=["/metrics", "/metrics/cadvisor"], verbs=["get"]),
        ])
        k8s.KubeClusterRoleBinding(self, "prom-binding", metadata=meta("prometheus-discovery", None, part_of=PART),
                                   role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                        name="prometheus-discovery"),
                                   subjects=[k8s.Subject(kind="ServiceAccount", name="prometheus", namespace=ns)])
        k8s.KubeConfigMap(self, "prom-config", metadata=meta("prometheus-config", ns, part_of=PART), data={
            "prometheus.yml": with_environment(read("prometheus/prometheus-kubernetes.yml"), env.name),
            "recording_rules.yml": read("prometheus/recording_rules.yml"),
            "alert_rules.yml": read("prometheus/alert_rules.yml"),
        })
        _stateless(self, "prometheus", "prometheus", ns, PROMETHEUS_IMAGE, env.prometheus_replicas,
                   ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                    # time or size, whichever is reached first: the 50Gi volume never fills
                    "--storage.tsdb.retention.time=15d", "--storage.tsdb.retention.size=40GB", "--web.enable-lifecycle"],
                   9090, "/-/ready", [config_volume("config", "prometheus-config")],
                   [k8s.VolumeMount(name="config", mount_path="/etc/prometheus", read_only=True),
                    k8s.VolumeMount(name="data", mount_path="/prometheus")],
                   Resources("500m", "2Gi", "2", "4Gi"), uid=65534, service_account="prometheus",
                   # alive (/-/healthy) is not ready (/-/ready): a WAL replay must not get the pod killed
                   stateful_volume="data", live_path="/-/healthy")

    def _alertmanager(self, ns: str) -> None:
        k8s.KubeConfigMap(self, "am-config", metadata=meta("alertmanager-config", ns, part_of=PART),
                          data={"alertmanager.yml": read("alertmanager/alertmanager.yml")})
        _stateless(self, "alertmanager", "alertmanager", ns, ALERTMANAGER_IMAGE, 1,
                   ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/tmp/alertmanager"],
                   9093, "/-/ready",
                   [config_volume("config", "alertmanager-config"),
                    k8s.Volume(name="secrets", secret=k8s.SecretVolumeSource(secret_name="alertmanager-secrets"))],
                   [k8s.VolumeMount(name="config", mount_path="/etc/alertmanager", read_only=True),
                    k8s.VolumeMount(name="secrets", mount_path="/etc/alertmanager/secrets", read_only=True)],
                   Resources("100m", "128Mi", "500m", "256Mi"), uid=65534, live_path="/-/healthy")

    def _grafana(self, ns: str) -> None:
        datasource = read("grafana/provisioning/datasources/datasource.yml").replace(
            "http://prometheus:9090", "http://prometheus.prometheus.svc:9090")
        k8s.KubeConfigMap(self, "graf-provisioning", metadata=meta("grafana-provisioning", ns, part_of=PART), data={
            "datasource.yml": datasource,
            "dashboards.yml": read("grafana/provisioning/dashboards/dashboards.yml"),
        })
        k8s.KubeConfigMap(self, "graf-dashboards", metadata=meta("grafana-dashboards", ns, part_of=PART), data={
            "fingerprint-api-overview.json": read("grafana/dashboards/fingerprint-api-overview.json"),
        })
        admin = k8s.EnvVar(name="GF_SECURITY_ADMIN_PASSWORD", value_from=k8s.EnvVarSource(
            secret_key_ref=k8s.SecretKeySelector(name="grafana-admin", key="password")))
        _stateless(self, "grafana", "grafana", ns, GRAFANA_IMAGE, 1, [], 3000, "/api/health",
                   [config_volume("provisioning", "grafana-provisioning"), config_volume("dashboards", "grafana-dashboards"),
                    k8s.Volume(name="data", empty_dir=k8s.EmptyDirVolumeSource())],
                   [k8s.VolumeMount(name="provisioning", mount_path="/etc/grafana/provisioning/datasources/datasource.yml",
                                    sub_path="datasource.yml", read_only=True),
                    k8s.VolumeMount(name="provisioning", mount_path="/etc/grafana/provisioning/dashboards/dashboards.yml",
                                    sub_path="dashboards.yml", read_only=True),
                    k8s.VolumeMount(name="dashboards", mount_path="/var/lib/grafana/dashboards", read_only=True),
                    k8s.VolumeMount(name="data", mount_path="/var/lib/grafana")],
                   Resources("100m", "256Mi", "500m", "512Mi"), uid=472,
                   env=[admin, k8s.EnvVar(name="GF_USERS_ALLOW_SIGN_UP", value="false")])


__all__ = ["APP_NAMESPACE", "MonitoringChart"]
