"""prometheus-adapter: serves the HPA's per-pod request rate (custom.metrics.k8s.io) from Prometheus.

Without the whole of it (Deployment, APIService, RBAC, a NetworkPolicy that lets the API server in) an
HPA that names a Pods metric sees an error for it and, by the HPA's rules, never scales down.
"""

from __future__ import annotations

from cdk8s_plus_33 import k8s
from constructs import Construct

from deploy_cdk8s.charts.builders import container_security, meta, pod_security, port, resources, skip, tmp_volume
from deploy_cdk8s.config import Resources

ADAPTER_IMAGE = "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0"
ADAPTER_NAME = "prometheus-adapter"
PART = "metrics-adapter"  # not `observability`: the API server (no pod, no namespace) must reach it
SECURE_PORT = 6443
RATE_METRIC = "http_server_requests_per_second"

ADAPTER_RULES = f"""\
# The API's exported request histogram as a per-pod rate, for the HPA's Pods metric.
rules:
  - seriesQuery: 'http_server_request_duration_seconds_count{{namespace!="",pod!=""}}'
    resources:
      overrides:
        namespace: {{resource: namespace}}
        pod: {{resource: pod}}
    name:
      matches: "^http_server_request_duration_seconds_count$"
      as: "{RATE_METRIC}"
    metricsQuery: 'sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[2m])) by (<<.GroupBy>>)'
"""


def _rbac(scope: Construct, ns: str) -> None:
    def binding(cid: str, name: str, kind: str, role: str, namespace: str | None = None,
                subject: k8s.Subject | None = None) -> None:
        ref = k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind=kind, name=role)
        subjects = [subject or k8s.Subject(kind="ServiceAccount", name=ADAPTER_NAME, namespace=ns)]
        m = meta(name, namespace, part_of=PART)
        if namespace is None:
            k8s.KubeClusterRoleBinding(scope, cid, metadata=m, role_ref=ref, subjects=subjects)
        else:
            k8s.KubeRoleBinding(scope, cid, metadata=m, role_ref=ref, subjects=subjects)

    k8s.KubeServiceAccount(scope, "adapter-sa", metadata=meta(ADAPTER_NAME, ns, part_of=PART))
    # what it maps series to: pods and namespaces
    k8s.KubeClusterRole(scope, "adapter-resource-reader", metadata=meta("prometheus-adapter-resource-reader", None,
                                                                        part_of=PART), rules=[
        k8s.PolicyRule(api_groups=[""], resources=["namespaces", "pods", "services", "nodes"],
                       verbs=["get", "list", "watch"])])
    binding("adapter-resource-reader-binding", "prometheus-adapter-resource-reader", "ClusterRole",
            "prometheus-adapter-resource-reader")
    # an aggregated API server delegates authentication and authorization to the cluster's
    binding("adapter-auth-delegator", "prometheus-adapter:system:auth-delegator", "ClusterRole",
            "system:auth-delegator")
    binding("adapter-auth-reader", "prometheus-adapter-auth-reader", "Role", "extension-apiserver-authentication-reader",
            namespace="kube-system")
    # the HPA controller reads the metrics the adapter serves
    k8s.KubeClusterRole(scope, "custom-metrics-reader", metadata=meta("custom-metrics-reader", None, part_of=PART),
                        # the API serves /namespaces/N/pods/*/METRIC: resource `pods`, subresource the metric
                        rules=[k8s.PolicyRule(api_groups=["custom.metrics.k8s.io"], resources=[f"pods/{RATE_METRIC}"],
                                              verbs=["get", "list"])])
    binding("hpa-custom-metrics", "hpa-controller-custom-metrics", "ClusterRole", "custom-metrics-reader",
            subject=k8s.Subject(kind="ServiceAccount", name="horizontal-pod-autoscaler", namespace="kube-system"))


def metrics_adapter(scope: Construct, ns: str, prometheus_url: str) -> None:
    selector = {"app.kubernetes.io/name": ADAPTER_NAME}
    k8s.KubeConfigMap(scope, "adapter-config", metadata=meta("prometheus-adapter-config", ns, part_of=PART),
                      data={"config.yaml": ADAPTER_RULES})
    _rbac(scope, ns)
    container = k8s.Container(
        name=ADAPTER_NAME, image=ADAPTER_IMAGE, image_pull_policy="Always",
        args=[f"--prometheus-url={prometheus_url}", "--config=/etc/adapter/config.yaml", "--metrics-relist-interval=1m",
              f"--secure-port={SECURE_PORT}", "--cert-dir=/tmp/cert", "--v=2"],
        ports=[k8s.ContainerPort(name="https", container_port=SECURE_PORT)],
        resources=resources(Resources("100m", "128Mi", "500m", "256Mi")), security_context=container_security(),
        liveness_probe=k8s.Probe(http_get=k8s.HttpGetAction(path="/livez", port=port(SECURE_PORT), scheme="HTTPS"),
                                 initial_delay_seconds=30, period_seconds=15),
        readiness_probe=k8s.Probe(http_get=k8s.HttpGetAction(path="/readyz", port=port(SECURE_PORT), scheme="HTTPS"),
                                  initial_delay_seconds=5, period_seconds=10),
        volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp"),
                       k8s.VolumeMount(name="config", mount_path="/etc/adapter", read_only=True)])
    k8s.KubeDeployment(scope, "adapter", metadata=meta(ADAPTER_NAME, ns, part_of=PART, annotations=skip(
        ("CKV_K8S_43", "upstream image pinned by version tag"),
        ("CKV_K8S_38", "an aggregated API server needs its token to delegate authentication"),
        ("CKV_K8S_40", "the upstream image runs as UID 65534"))),
                       spec=k8s.DeploymentSpec(
        replicas=2, selector=k8s.LabelSelector(match_labels=selector),
        template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(labels={**meta(ADAPTER_NAME, ns, part_of=PART).labels, **selector}),  # type: ignore[dict-item]
            spec=k8s.PodSpec(service_account_name=ADAPTER_NAME, automount_service_account_token=True,
                             security_context=pod_security(65534), containers=[container],
                             volumes=[tmp_volume(), k8s.Volume(name="config", config_map=k8s.ConfigMapVolumeSource(
                                 name="prometheus-adapter-config"))],
                             topology_spread_constraints=[k8s.TopologySpreadConstraint(
                                 max_skew=1, topology_key="kubernetes.io/hostname", when_unsatisfiable="ScheduleAnyway",
                                 label_selector=k8s.LabelSelector(match_labels=selector))]))))
    k8s.KubePodDisruptionBudget(scope, "adapter-pdb", metadata=meta("prometheus-adapter-pdb", ns, part_of=PART),
                                spec=k8s.PodDisruptionBudgetSpec(min_available=k8s.IntOrString.from_number(1),
                                                                 selector=k8s.LabelSelector(match_labels=selector)))
    k8s.KubeService(scope, "adapter-service", metadata=meta(ADAPTER_NAME, ns, part_of=PART), spec=k8s.ServiceSpec(
        selector=selector, ports=[k8s.ServicePort(name="https", port=443, target_port=port(SECURE_PORT))]))
    k8s.KubeApiService(scope, "adapter-apiservice", metadata=meta("v1beta1.custom.metrics.k8s.io", None, part_of=PART),
                       spec=k8s.ApiServiceSpec(
        group="custom.metrics.k8s.io", version="v1beta1", group_priority_minimum=100, version_priority=100,
        # the adapter's serving certificate is self-signed at start (--cert-dir); the API server reaches it
        # through the Service inside the cluster network
        insecure_skip_tls_verify=True,
        service=k8s.ServiceReference(name=ADAPTER_NAME, namespace=ns, port=443)))
    # The API server is no pod of any namespace: the adapter's port is open to the network, nothing else is.
    k8s.KubeNetworkPolicy(scope, "adapter-netpol", metadata=meta("prometheus-adapter-ingress", ns, part_of=PART),
                          spec=k8s.NetworkPolicySpec(
        pod_selector=k8s.LabelSelector(match_labels=selector), policy_types=["Ingress"],
        ingress=[k8s.NetworkPolicyIngressRule(ports=[k8s.NetworkPolicyPort(port=port(SECURE_PORT), protocol="TCP")])]))
