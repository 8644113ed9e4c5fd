"""The API in namespace `fingerprint`: config, workload, exposure, scaling, disruption, network and RBAC."""

from __future__ import annotations

from cdk8s import Chart
from cdk8s_plus_33 import k8s
from constructs import Construct

from deploy_cdk8s.charts.builders import (
    container_security,
    http_probe,
    labels,
    meta,
    namespace_peer,
    pod_security,
    port,
    resources,
    restricted_namespace,
    skip,
    tmp_volume,
)
from deploy_cdk8s.charts.metrics_adapter import RATE_METRIC
from deploy_cdk8s.config import (
    API_PORT,
    APP_NAME,
    APP_NAMESPACE,
    APP_UID,
    METRICS_PORT,
    MILVUS_GRPC_PORT,
    MILVUS_NAMESPACE,
    SECRET_NAME,
    EnvConfig,
)

SHUTDOWN_DELAY = 5
SHUTDOWN_GRACE = 25
# SIGTERM -> readiness 503 for SHUTDOWN_DELAY -> in-flight work SHUTDOWN_GRACE -> exit; plus margin
TERMINATION_GRACE = SHUTDOWN_DELAY + SHUTDOWN_GRACE + 15
SECRETS_DIR = "/var/run/secrets/fingerprint"  # created out of band (sealed-secrets, external-secrets...): never here


def cores(env: EnvConfig) -> int:
    return max(1, int(float(env.api_resources.cpu_limit)))


def app_settings(env: EnvConfig) -> dict[str, str]:
    calibrated = {} if env.match_threshold is None else {"MATCH_THRESHOLD": str(env.match_threshold)}
    engine = {"VECTOR_ENGINE": env.vector_engine} | (
        {"VECTOR_ENGINE_URI": env.vector_engine_uri} if env.vector_engine == "milvus" else {})
    return calibrated | engine | {
        "LOG_LEVEL": env.log_level,
        # one extraction per CPU: more only share the cores and hold more LEADER activations in memory
        # ~8 admitted requests a core: an admitted identify's p99 stays under 2 s at 2x overload (docs/performance.md)
        "WORKERS": str(cores(env)), "MAX_POOL_SIZE": str(8 * cores(env)), "REQUEST_TIMEOUT": "30",
        "FEATURE_EXTRACTION_TIMEOUT": "5", "INFERENCE_TIMEOUT": "10", "ENABLE_CORS": "false",
        "ENABLE_METRICS": "true", "HOST": "0.0.0.0", "PORT": str(API_PORT), "DATA_DIR": "/tmp/data",
        "METRICS_HOST": "0.0.0.0", "METRICS_PORT": str(METRICS_PORT),
        "SHUTDOWN_DELAY": str(SHUTDOWN_DELAY), "SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
        # mounted from the Secret below: salted API key hashes and the AES keys for templates at rest
        "API_KEYS_FILE": f"{SECRETS_DIR}/api-keys", "TEMPLATE_KEY_FILE": f"{SECRETS_DIR}/template-keys",
        "RATE_LIMIT_PER_SECOND": "100",
        # torch would size its pool to the node's cores and be throttled under the pod's CPU limit
        "TORCH_THREADS": str(max(1, int(float(env.api_resources.cpu_limit)))),
        # glibc: fewer malloc arenas keep a threaded process's RSS at its working set under load
        "MALLOC_ARENA_MAX": "2",
    }


class ApplicationChart(Chart):
    def __init__(self, scope: Construct, env: EnvConfig) -> None:
        super().__init__(scope, "application", disable_resource_name_hashes=True)
        ns = APP_NAMESPACE
        selector = {"app.kubernetes.io/name": APP_NAME}
        restricted_namespace(self, ns)
        k8s.KubeConfigMap(self, "config", metadata=meta("fingerprint-api-config", ns), data=app_settings(env))
        self._rbac(env, ns)
        self._deployment(env, ns, selector)
        k8s.KubeService(self, "service", metadata=meta(APP_NAME, ns), spec=k8s.ServiceSpec(
            type="ClusterIP", selector=selector,
            ports=[k8s.ServicePort(name="http", port=80, target_port=k8s.IntOrString.from_string("http")),
                   k8s.ServicePort(name="metrics", port=METRICS_PORT, target_port=k8s.IntOrString.from_string("metrics"))]))
        k8s.KubeIngress(self, "ingress", metadata=meta("fingerprint-api-ingress", ns, annotations={
            "cert-manager.io/cluster-issuer": env.cluster_issuer,
            "nginx.ingress.kubernetes.io/proxy-body-size": "10m",
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            # per client address, before any pod: a flood of requests (e.g. random API keys) costs the pods
            # HTTP parsing even when each answer is a cheap 401; a pod serves about one identify per second
            "nginx.ingress.kubernetes.io/limit-connections": "20",
            "nginx.ingress.kubernetes.io/limit-rps": "20",
        }), spec=k8s.IngressSpec(
            ingress_class_name="nginx",
            tls=[k8s.IngressTls(hosts=[env.host], secret_name="fingerprint-api-tls")],
            rules=[k8s.IngressRule(host=env.host, http=k8s.HttpIngressRuleValue(paths=[k8s.HttpIngressPath(
                path="/api", path_type="Prefix", backend=k8s.IngressBackend(service=k8s.IngressServiceBackend(
                    name=APP_NAME, port=k8s.ServiceBackendPort(name="http"))))]))]))
        self._autoscaling(env, ns)
        k8s.KubePodDisruptionBudget(self, "pdb", metadata=meta("fingerprint-api-pdb", ns), spec=k8s.PodDisruptionBudgetSpec(
            min_available=k8s.IntOrString.from_number(2), selector=k8s.LabelSelector(match_labels=selector)))
        self._network_policy(env, ns, selector)

    def _deployment(self, env: EnvConfig, ns: str, selector: dict[str, str]) -> None:
        settings_from = [k8s.EnvFromSource(config_map_ref=k8s.ConfigMapEnvSource(name="fingerprint-api-config"))]
        secret_env = [
            k8s.EnvVar(name="DATABASE_URL", value_from=k8s.EnvVarSource(secret_key_ref=k8s.SecretKeySelector(
                # required: without it each replica would silently keep its own SQLite gallery in an emptyDir
                name=SECRET_NAME, key="database-url", optional=False))),
        ]
        container = k8s.Container(
            name=APP_NAME, image=env.image_ref, image_pull_policy="Always",
            ports=[k8s.ContainerPort(name="http", container_port=API_PORT, protocol="TCP"),
                   k8s.ContainerPort(name="metrics", container_port=METRICS_PORT, protocol="TCP")],
            env_from=settings_from, env=secret_env,
            resources=resources(env.api_resources), security_context=container_security(),
            startup_probe=http_probe("/health", "http", initial=5, period=5, failures=24),
            liveness_probe=http_probe("/health", "http", initial=30, period=10),
            readiness_probe=http_probe("/api/v1/models/status", "http", initial=10, period=5),
            volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp"),
                           k8s.VolumeMount(name="secrets", mount_path=SECRETS_DIR, read_only=True)],
        )
        pod_labels = {**labels(APP_NAME), **selector}
        k8s.KubeDeployment(self, "deployment", metadata=meta(APP_NAME, ns, annotations=skip(
            ("CKV_K8S_43", "pinned by tag; `--image name:tag@sha256:...` (or EnvConfig.digest) pins it by digest at release"),
            ("CKV_K8S_35", "DATABASE_URL is read once at start-up; the secret value never reaches logs"),
        )), spec=k8s.DeploymentSpec(
            revision_history_limit=5,
            selector=k8s.LabelSelector(match_labels=selector),
            strategy=k8s.DeploymentStrategy(type="RollingUpdate", rolling_update=k8s.RollingUpdateDeployment(
                max_surge=k8s.IntOrString.from_number(1), max_unavailable=k8s.IntOrString.from_number(0))),
            template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels=pod_labels, annotations={
                    "prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT), "prometheus.io/path": "/metrics"}),
                spec=k8s.PodSpec(
                    service_account_name=APP_NAME, automount_service_account_token=False,
                    termination_grace_period_seconds=TERMINATION_GRACE,
                    security_context=pod_security(APP_UID),
                    containers=[container],
                    volumes=[tmp_volume(), k8s.Volume(name="secrets", secret=k8s.SecretVolumeSource(
                        secret_name=SECRET_NAME, default_mode=0o400,
                        items=[k8s.KeyToPath(key="api-keys", path="api-keys"),
                               k8s.KeyToPath(key="template-keys", path="template-keys")]))],
                    affinity=k8s.Affinity(pod_anti_affinity=k8s.PodAntiAffinity(
                        preferred_during_scheduling_ignored_during_execution=[k8s.WeightedPodAffinityTerm(
                            weight=100, pod_affinity_term=k8s.PodAffinityTerm(
                                topology_key="kubernetes.io/hostname",
                                label_selector=k8s.LabelSelector(match_labels=selector)))])),
                    topology_spread_constraints=[k8s.TopologySpreadConstraint(
                        max_skew=1, topology_key="topology.kubernetes.io/zone", when_unsatisfiable="ScheduleAnyway",
                        label_selector=k8s.LabelSelector(match_labels=selector))],
                ),
            ),
        ))

    def _autoscaling(self, env: EnvConfig, ns: str) -> None:
        def util(name: str, pct: int) -> k8s.MetricSpecV2:
            return k8s.MetricSpecV2(type="Resource", resource=k8s.ResourceMetricSourceV2(
                name=name, target=k8s.MetricTargetV2(type="Utilization", average_utilization=pct)))

        k8s.KubeHorizontalPodAutoscalerV2(self, "hpa", metadata=meta("fingerprint-api-hpa", ns),
                                          spec=k8s.HorizontalPodAutoscalerSpecV2(
            scale_target_ref=k8s.CrossVersionObjectReferenceV2(api_version="apps/v1", kind="Deployment", name=APP_NAME),
            min_replicas=env.hpa_min, max_replicas=env.hpa_max,
            # no memory target: every pod holds the whole gallery, so adding pods never lowers it (an idle pod
            # passes 80 % of its request after ~50 requests and the HPA would pin at its maximum)
            metrics=[
                util("cpu", 70),
                # served by prometheus-adapter (charts/metrics_adapter.py) from the exported request histogram
                k8s.MetricSpecV2(type="Pods", pods=k8s.PodsMetricSourceV2(
                    metric=k8s.MetricIdentifierV2(name=RATE_METRIC),
                    target=k8s.MetricTargetV2(type="AverageValue",
                                              average_value=k8s.Quantity.from_string(env.requests_per_pod)))),
            ],
            behavior=k8s.HorizontalPodAutoscalerBehaviorV2(scale_down=k8s.HpaScalingRulesV2(
                stabilization_window_seconds=300,
                policies=[k8s.HpaScalingPolicyV2(type="Pods", value=1, period_seconds=60)])),
        ))

    def _network_policy(self, env: EnvConfig, ns: str, selector: dict[str, str]) -> None:
        tcp = "TCP"
        k8s.KubeNetworkPolicy(self, "netpol", metadata=meta("fingerprint-api-netpol", ns), spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels=selector), policy_types=["Ingress", "Egress"],
            ingress=[k8s.NetworkPolicyIngressRule(
                from_=[namespace_peer(env.ingress_namespace), namespace_peer(env.prometheus_namespace)],
                ports=[k8s.NetworkPolicyPort(port=port(API_PORT), protocol=tcp)]),
                     k8s.NetworkPolicyIngressRule(  # only Prometheus reaches the metrics listener
                from_=[namespace_peer(env.prometheus_namespace)],
                ports=[k8s.NetworkPolicyPort(port=port(METRICS_PORT), protocol=tcp)])],
            egress=[
                k8s.NetworkPolicyEgressRule(to=[namespace_peer("kube-system")], ports=[
                    k8s.NetworkPolicyPort(port=port(53), protocol="UDP"), k8s.NetworkPolicyPort(port=port(53), protocol=tcp)]),
                k8s.NetworkPolicyEgressRule(to=[namespace_peer(env.database_namespace)], ports=[
                    k8s.NetworkPolicyPort(port=port(env.database_port), protocol=tcp)]),
                *([k8s.NetworkPolicyEgressRule(to=[namespace_peer(MILVUS_NAMESPACE)], ports=[
                    k8s.NetworkPolicyPort(port=port(MILVUS_GRPC_PORT), protocol=tcp)])] if env.vector_engine == "milvus" else []),
                k8s.NetworkPolicyEgressRule(to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr="0.0.0.0/0"))],
                                            ports=[k8s.NetworkPolicyPort(port=port(443), protocol=tcp)]),
            ],
        ))

    def _rbac(self, env: EnvConfig, ns: str) -> None:
        k8s.KubeServiceAccount(self, "sa", metadata=meta(APP_NAME, ns), automount_service_account_token=False)
        k8s.KubeRole(self, "role", metadata=meta("fingerprint-api-reader", ns), rules=[
            k8s.PolicyRule(api_groups=[""], resources=["configmaps", "pods", "events"], verbs=["get", "list", "watch"]),
            k8s.PolicyRule(api_groups=[""], resources=["secrets"], resource_names=[SECRET_NAME], verbs=["get"]),
        ])
        k8s.KubeRoleBinding(self, "rolebinding", metadata=meta("fingerprint-api-reader", ns),
                            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                                 name="fingerprint-api-reader"),
                            subjects=[k8s.Subject(kind="ServiceAccount", name=APP_NAME, namespace=ns)])
        k8s.KubeClusterRole(self, "metrics-reader", metadata=meta("fingerprint-api-metrics-reader", None), rules=[
            k8s.PolicyRule(non_resource_ur_ls=["/metrics"], verbs=["get"])])
        k8s.KubeClusterRoleBinding(self, "metrics-reader-binding", metadata=meta("fingerprint-api-metrics-reader", None),
                                   role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                        name="fingerprint-api-metrics-reader"),
                                   subjects=[k8s.Subject(kind="ServiceAccount", name=env.prometheus_service_account,
                                                       namespace=env.prometheus_namespace)])
