"""Small builders for what every workload repeats: security contexts, resources, probes, labels."""

from __future__ import annotations

from cdk8s_plus_33 import k8s
from constructs import Construct

from deploy_cdk8s.config import Resources


def labels(name: str, part_of: str = "fingerprint-api") -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": part_of,
            "app.kubernetes.io/managed-by": "cdk8s"}


def meta(name: str, namespace: str | None, extra_labels: dict[str, str] | None = None,
         annotations: dict[str, str] | None = None, part_of: str = "fingerprint-api") -> k8s.ObjectMeta:
    return k8s.ObjectMeta(name=name, namespace=namespace, labels={**labels(name, part_of), **(extra_labels or {})},
                          annotations=annotations)


def resources(r: Resources) -> k8s.ResourceRequirements:
    return k8s.ResourceRequirements(
        requests={"cpu": k8s.Quantity.from_string(r.cpu_request), "memory": k8s.Quantity.from_string(r.memory_request)},
        limits={"cpu": k8s.Quantity.from_string(r.cpu_limit), "memory": k8s.Quantity.from_string(r.memory_limit)},
    )


def container_security(read_only: bool = True) -> k8s.SecurityContext:
    return k8s.SecurityContext(
        allow_privilege_escalation=False, read_only_root_filesystem=read_only, run_as_non_root=True,
        capabilities=k8s.Capabilities(drop=["ALL"]), seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def pod_security(uid: int, fs_group: int | None = None) -> k8s.PodSecurityContext:
    return k8s.PodSecurityContext(
        run_as_non_root=True, run_as_user=uid, run_as_group=uid, fs_group=fs_group if fs_group is not None else uid,
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def http_probe(path: str, port: int | str, initial: int, period: int, failures: int = 3,
               timeout: int = 3) -> k8s.Probe:
    target = k8s.IntOrString.from_number(port) if isinstance(port, int) else k8s.IntOrString.from_string(port)
    return k8s.Probe(http_get=k8s.HttpGetAction(path=path, port=target), initial_delay_seconds=initial,
                     period_seconds=period, failure_threshold=failures, timeout_seconds=timeout)


def tcp_probe(port: int, initial: int, period: int) -> k8s.Probe:
    return k8s.Probe(tcp_socket=k8s.TcpSocketAction(port=k8s.IntOrString.from_number(port)),
                     initial_delay_seconds=initial, period_seconds=period)


def tmp_volume(name: str = "tmp") -> k8s.Volume:
    return k8s.Volume(name=name, empty_dir=k8s.EmptyDirVolumeSource(size_limit=k8s.Quantity.from_string("256Mi")))


def config_volume(name: str, config_map: str) -> k8s.Volume:
    return k8s.Volume(name=name, config_map=k8s.ConfigMapVolumeSource(name=config_map))


def port(n: int) -> k8s.IntOrString:
    return k8s.IntOrString.from_number(n)


def skip(*checks: tuple[str, str]) -> dict[str, str]:
    """checkov skip annotations, each with the reason it is acceptable here."""
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(checks, start=1)}


def restricted_namespace(scope: Construct, name: str) -> None:
    """A namespace whose pods must meet the `restricted` Pod Security Standard."""
    k8s.KubeNamespace(scope, "namespace", metadata=k8s.ObjectMeta(
        name=name, labels={"kubernetes.io/metadata.name": name, "pod-security.kubernetes.io/enforce": "restricted"}))


def namespace_peer(name: str) -> k8s.NetworkPolicyPeer:
    """Every pod of the namespace `name`, as a NetworkPolicy peer."""
    return k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector(match_labels={"kubernetes.io/metadata.name": name}))


def namespace_policy(scope: Construct, namespace: str, ingress_from: list[str]) -> None:
    """Observability pods accept traffic only from the listed namespaces; egress stays open (scraping, shipping)."""
    k8s.KubeNetworkPolicy(scope, f"netpol-{namespace}", metadata=meta(f"{namespace}-ingress", namespace,
                                                                         part_of="observability"),
                          spec=k8s.NetworkPolicySpec(
        pod_selector=k8s.LabelSelector(match_labels={"app.kubernetes.io/part-of": "observability"}),
        policy_types=["Ingress"],
        ingress=[k8s.NetworkPolicyIngressRule(from_=[namespace_peer(ns) for ns in ingress_from])]))
