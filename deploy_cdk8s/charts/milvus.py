"""Milvus standalone in namespace `milvus`, when an environment sets VECTOR_ENGINE=milvus: identify's first
stage for every API replica (gallery/engine_shortlist.py). One pod with embedded etcd and local storage on
its volume; the collection is rebuilt from the gallery by the API's sync if the volume is lost, so the engine
holds nothing the gallery store does not. Past one node's memory, run Milvus distributed (its operator or
Helm chart) and point VECTOR_ENGINE_URI at it: the API side does not change.
"""

from __future__ import annotations

from pathlib import Path

from cdk8s import Chart
from cdk8s_plus_33 import k8s
from constructs import Construct

from deploy_cdk8s.charts.builders import (
    container_security,
    http_probe,
    labels,
    meta,
    namespace_peer,
    port,
    resources,
    restricted_namespace,
    skip,
    tmp_volume,
)
from deploy_cdk8s.config import APP_NAMESPACE, MILVUS_GRPC_PORT, MILVUS_HTTP_PORT, MILVUS_NAMESPACE, EnvConfig

NAME = "milvus"
MILVUS_UID = 999  # the image's own `milvus` user, which owns its binaries (a forced other UID cannot run them)
ETCD_CONFIG = Path(__file__).resolve().parents[1] / "milvus" / "embedEtcd.yaml"  # docker-compose.yml mounts it too


class MilvusChart(Chart):
    def __init__(self, scope: Construct, env: EnvConfig) -> None:
        super().__init__(scope, "milvus", disable_resource_name_hashes=True)
        ns = MILVUS_NAMESPACE
        selector = {"app.kubernetes.io/name": NAME}
        restricted_namespace(self, ns)
        k8s.KubeConfigMap(self, "config", metadata=meta("milvus-config", ns),
                          data={"embedEtcd.yaml": ETCD_CONFIG.read_text()})
        k8s.KubeService(self, "service", metadata=meta(NAME, ns), spec=k8s.ServiceSpec(
            type="ClusterIP", selector=selector,
            ports=[k8s.ServicePort(name="grpc", port=MILVUS_GRPC_PORT, target_port=k8s.IntOrString.from_string("grpc")),
                   k8s.ServicePort(name="metrics", port=MILVUS_HTTP_PORT, target_port=k8s.IntOrString.from_string("metrics"))]))
        self._statefulset(env, ns, selector)
        k8s.KubeNetworkPolicy(self, "netpol", metadata=meta("milvus-netpol", ns), spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels=selector), policy_types=["Ingress"],
            ingress=[
                k8s.NetworkPolicyIngressRule(from_=[namespace_peer(APP_NAMESPACE)],
                                             ports=[k8s.NetworkPolicyPort(port=port(MILVUS_GRPC_PORT), protocol="TCP")]),
                k8s.NetworkPolicyIngressRule(from_=[namespace_peer(env.prometheus_namespace)],
                                             ports=[k8s.NetworkPolicyPort(port=port(MILVUS_HTTP_PORT), protocol="TCP")]),
            ]))

    def _statefulset(self, env: EnvConfig, ns: str, selector: dict[str, str]) -> None:
        container = k8s.Container(
            name=NAME, image=env.milvus_image, image_pull_policy="Always",
            command=["milvus", "run", "standalone"],
            env=[k8s.EnvVar(name=k, value=v) for k, v in {
                "ETCD_USE_EMBED": "true", "ETCD_DATA_DIR": "/var/lib/milvus/etcd",
                "ETCD_CONFIG_PATH": "/milvus/configs/embedEtcd.yaml", "COMMON_STORAGETYPE": "local",
                "DEPLOY_MODE": "STANDALONE"}.items()],
            ports=[k8s.ContainerPort(name="grpc", container_port=MILVUS_GRPC_PORT, protocol="TCP"),
                   k8s.ContainerPort(name="metrics", container_port=MILVUS_HTTP_PORT, protocol="TCP")],
            resources=resources(env.milvus_resources),
            # Milvus writes runtime files beside its configs under /milvus (milvus-io/milvus#22516)
            security_context=container_security(read_only=False),
            startup_probe=http_probe("/healthz", "metrics", initial=10, period=10, failures=30, timeout=10),
            liveness_probe=http_probe("/healthz", "metrics", initial=0, period=30, timeout=10),
            readiness_probe=http_probe("/healthz", "metrics", initial=0, period=10, timeout=10),
            volume_mounts=[k8s.VolumeMount(name="data", mount_path="/var/lib/milvus"),
                           k8s.VolumeMount(name="config", mount_path="/milvus/configs/embedEtcd.yaml",
                                           sub_path="embedEtcd.yaml", read_only=True),
                           k8s.VolumeMount(name="tmp", mount_path="/tmp")],
        )
        k8s.KubeStatefulSet(self, "statefulset", metadata=meta(NAME, ns, annotations=skip(
            ("CKV_K8S_43", "pinned by tag: the Milvus release the API was measured against"),
            ("CKV_K8S_22", "Milvus writes runtime files beside its configs under /milvus (milvus-io/milvus#22516)"),
            ("CKV_K8S_40", "UID 999 is the image's own milvus user, which owns its binaries: another UID cannot run them"),
        )), spec=k8s.StatefulSetSpec(
            service_name=NAME, replicas=1, selector=k8s.LabelSelector(match_labels=selector),
            template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels={**labels(NAME), **selector}),
                spec=k8s.PodSpec(
                    automount_service_account_token=False,
                    security_context=k8s.PodSecurityContext(
                        run_as_non_root=True, run_as_user=MILVUS_UID, run_as_group=MILVUS_UID, fs_group=MILVUS_UID,
                        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")),
                    containers=[container],
                    volumes=[tmp_volume(), k8s.Volume(name="config", config_map=k8s.ConfigMapVolumeSource(
                        name="milvus-config"))],
                )),
            volume_claim_templates=[k8s.KubePersistentVolumeClaimProps(
                metadata=k8s.ObjectMeta(name="data"),
                spec=k8s.PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=k8s.VolumeResourceRequirements(requests={
                        "storage": k8s.Quantity.from_string(env.milvus_storage)})))],
        ))

