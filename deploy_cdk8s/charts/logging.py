"""Namespace `logging`: Elasticsearch, Logstash (pipeline from observability/), Kibana, Filebeat DaemonSet."""

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
    tcp_probe,
    tmp_volume,
)
from deploy_cdk8s.config import EnvConfig, Resources
from deploy_cdk8s.observability_files import read

ELASTIC_VERSION = "8.15.3"
NS = "logging"
PART = "observability"
_IMAGE_SKIP = ("CKV_K8S_43", "upstream image pinned by version tag")
_ELASTIC_UID = ("CKV_K8S_40", "the Elastic images own their files as UID 1000; another UID breaks them")


def _secret_env(name: str, secret: str, key: str) -> k8s.EnvVar:
    return k8s.EnvVar(name=name, value_from=k8s.EnvVarSource(secret_key_ref=k8s.SecretKeySelector(name=secret, key=key)))


class LoggingChart(Chart):
    def __init__(self, scope: Construct, env: EnvConfig) -> None:
        super().__init__(scope, "logging", disable_resource_name_hashes=True)
        k8s.KubeNamespace(self, "ns", metadata=k8s.ObjectMeta(name=NS, labels={"kubernetes.io/metadata.name": NS}))
        self._elasticsearch()
        self._logstash()
        self._kibana()
        self._filebeat()
        namespace_policy(self, NS, ingress_from=[NS, env.ingress_namespace])

    def _workload(self, cid: str, name: str, image: str, container_port: int, probe: k8s.Probe,
                  res: Resources, uid: int, env: list[k8s.EnvVar], volumes: list[k8s.Volume],
                  mounts: list[k8s.VolumeMount], stateful: bool = False, read_only: bool = True) -> None:
        selector = {"app.kubernetes.io/name": name}
        container = k8s.Container(
            name=name, image=image, image_pull_policy="Always", env=env,
            ports=[k8s.ContainerPort(name="main", container_port=container_port)],
            resources=resources(res), security_context=container_security(read_only=read_only),
            liveness_probe=probe, readiness_probe=probe,
            volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp"), *mounts])
        template = k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(labels={**selector, "app.kubernetes.io/part-of": PART}),
            spec=k8s.PodSpec(automount_service_account_token=False, security_context=pod_security(uid),
                             containers=[container], volumes=[tmp_volume(), *volumes]))
        notes = [_IMAGE_SKIP, _ELASTIC_UID, ("CKV_K8S_35", "the Elastic images read credentials from the environment")]
        if not read_only:
            notes.append(("CKV_K8S_22", "the Elastic images write to their install folder at start-up"))
        if stateful:
            k8s.KubeStatefulSet(self, cid, metadata=meta(name, NS, annotations=skip(*notes), part_of=PART),
                                spec=k8s.StatefulSetSpec(
                replicas=1, service_name=name, selector=k8s.LabelSelector(match_labels=selector), template=template,
                volume_claim_templates=[k8s.KubePersistentVolumeClaimProps(
                    metadata=k8s.ObjectMeta(name="data"), spec=k8s.PersistentVolumeClaimSpec(
                        access_modes=["ReadWriteOnce"],
                        resources=k8s.VolumeResourceRequirements(requests={"storage": k8s.Quantity.from_string("100Gi")})))]))
        else:
            k8s.KubeDeployment(self, cid, metadata=meta(name, NS, annotations=skip(*notes), part_of=PART),
                               spec=k8s.DeploymentSpec(replicas=1, selector=k8s.LabelSelector(match_labels=selector),
                                                       template=template))
        k8s.KubeService(self, f"{cid}-service", metadata=meta(name, NS, part_of=PART), spec=k8s.ServiceSpec(
            selector=selector, ports=[k8s.ServicePort(name="main", port=container_port, target_port=port(container_port))]))

    def _elasticsearch(self) -> None:
        k8s.KubeConfigMap(self, "es-templates", metadata=meta("elasticsearch-templates", NS, part_of=PART), data={
            "index-template.json": read("elasticsearch/index-template.json"),
            "ilm-policy.json": read("elasticsearch/ilm-policy.json"),
            "setup.sh": read("elasticsearch/setup.sh"),
        })
        self._elasticsearch_setup()
        self._workload(
            "elasticsearch", "elasticsearch", f"docker.elastic.co/elasticsearch/elasticsearch:{ELASTIC_VERSION}", 9200,
            tcp_probe(9200, initial=30, period=15), Resources("1", "2Gi", "2", "4Gi"), uid=1000,
            env=[k8s.EnvVar(name="discovery.type", value="single-node"),
                 k8s.EnvVar(name="xpack.security.enabled", value="true"),
                 k8s.EnvVar(name="xpack.security.http.ssl.enabled", value="false"),
                 k8s.EnvVar(name="ES_JAVA_OPTS", value="-Xms1g -Xmx1g"),
                 _secret_env("ELASTIC_PASSWORD", "elastic-credentials", "elastic-password")],
            volumes=[config_volume("templates", "elasticsearch-templates")],
            mounts=[k8s.VolumeMount(name="data", mount_path="/usr/share/elasticsearch/data"),
                    k8s.VolumeMount(name="templates", mount_path="/usr/share/elasticsearch/templates", read_only=True)],
            stateful=True, read_only=False)

    def _elasticsearch_setup(self) -> None:
        """A Job that loads what mounting alone never does: kibana_system's password (Kibana cannot log in
        without it), the lifecycle policy (indices are deleted after 30 days) and the index template."""
        container = k8s.Container(
            name="setup", image=f"docker.elastic.co/elasticsearch/elasticsearch:{ELASTIC_VERSION}",
            image_pull_policy="Always", command=["sh", "/templates/setup.sh"],
            env=[k8s.EnvVar(name="ELASTICSEARCH_URL", value="http://elasticsearch.logging.svc:9200"),
                 k8s.EnvVar(name="TEMPLATES_DIR", value="/templates"),
                 _secret_env("ELASTIC_PASSWORD", "elastic-credentials", "elastic-password"),
                 _secret_env("KIBANA_SYSTEM_PASSWORD", "elastic-credentials", "kibana-system-password"),
                 _secret_env("LOGSTASH_WRITER_PASSWORD", "elastic-credentials", "logstash-writer-password")],
            resources=resources(Resources("50m", "64Mi", "200m", "128Mi")), security_context=container_security(),
            volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp"),
                           k8s.VolumeMount(name="templates", mount_path="/templates", read_only=True)])
        notes = [_IMAGE_SKIP, _ELASTIC_UID, ("CKV_K8S_35", "the Elastic images read credentials from the environment")]
        k8s.KubeJob(self, "es-setup", metadata=meta("elasticsearch-setup", NS, annotations=skip(*notes), part_of=PART),
                    spec=k8s.JobSpec(backoff_limit=6, ttl_seconds_after_finished=86400, template=k8s.PodTemplateSpec(
                        metadata=k8s.ObjectMeta(labels={"app.kubernetes.io/name": "elasticsearch-setup",
                                                        "app.kubernetes.io/part-of": PART}),
                        spec=k8s.PodSpec(restart_policy="OnFailure", automount_service_account_token=False,
                                         security_context=pod_security(1000), containers=[container],
                                         volumes=[tmp_volume(), config_volume("templates", "elasticsearch-templates")]))))

    def _logstash(self) -> None:
        k8s.KubeConfigMap(self, "ls-pipeline", metadata=meta("logstash-pipeline", NS, part_of=PART),
                          data={"fingerprint.conf": read("logstash/pipeline/fingerprint.conf")})
        k8s.KubeConfigMap(self, "ls-config", metadata=meta("logstash-config", NS, part_of=PART),
                          data={"logstash.yml": read("logstash/config/logstash.yml")})
        self._workload(
            "logstash", "logstash", f"docker.elastic.co/logstash/logstash:{ELASTIC_VERSION}", 5044,
            tcp_probe(5044, initial=60, period=20), Resources("500m", "1Gi", "1", "2Gi"), uid=1000,
            env=[k8s.EnvVar(name="ELASTICSEARCH_HOSTS", value="http://elasticsearch.logging.svc:9200"),
                 k8s.EnvVar(name="LS_JAVA_OPTS", value="-Xms512m -Xmx512m"),
                 # write-only on the API's indices (elasticsearch/setup.sh), never the superuser
                 k8s.EnvVar(name="ELASTICSEARCH_USERNAME", value="logstash_writer"),
                 _secret_env("ELASTICSEARCH_PASSWORD", "elastic-credentials", "logstash-writer-password")],
            volumes=[config_volume("pipeline", "logstash-pipeline"), config_volume("config", "logstash-config")],
            mounts=[k8s.VolumeMount(name="pipeline", mount_path="/usr/share/logstash/pipeline", read_only=True),
                    k8s.VolumeMount(name="config", mount_path="/usr/share/logstash/config/logstash.yml",
                                    sub_path="logstash.yml", read_only=True)],
            read_only=False)

    def _kibana(self) -> None:
        k8s.KubeConfigMap(self, "kb-config", metadata=meta("kibana-config", NS, part_of=PART),
                          data={"kibana.yml": read("kibana/kibana.yml")})
        self._workload(
            "kibana", "kibana", f"docker.elastic.co/kibana/kibana:{ELASTIC_VERSION}", 5601,
            http_probe("/api/status", 5601, initial=60, period=20), Resources("250m", "1Gi", "1", "2Gi"), uid=1000,
            env=[k8s.EnvVar(name="ELASTICSEARCH_HOSTS", value="http://elasticsearch.logging.svc:9200"),
                 _secret_env("KIBANA_SYSTEM_PASSWORD", "elastic-credentials", "kibana-system-password")],
            volumes=[config_volume("config", "kibana-config")],
            mounts=[k8s.VolumeMount(name="config", mount_path="/usr/share/kibana/config/kibana.yml",
                                    sub_path="kibana.yml", read_only=True)],
            read_only=False)

    def _filebeat(self) -> None:
        k8s.KubeServiceAccount(self, "fb-sa", metadata=meta("filebeat", NS, part_of=PART))
        k8s.KubeClusterRole(self, "fb-role", metadata=meta("filebeat", None, part_of=PART), rules=[
            k8s.PolicyRule(api_groups=[""], resources=["pods", "namespaces", "nodes"], verbs=["get", "list", "watch"])])
        k8s.KubeClusterRoleBinding(self, "fb-binding", metadata=meta("filebeat", None, part_of=PART),
                                   role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                        name="filebeat"),
                                   subjects=[k8s.Subject(kind="ServiceAccount", name="filebeat", namespace=NS)])
        k8s.KubeConfigMap(self, "fb-config", metadata=meta("filebeat-config", NS, part_of=PART),
                          data={"filebeat.yml": read("filebeat/filebeat-kubernetes.yml")})
        selector = {"app.kubernetes.io/name": "filebeat"}
        container = k8s.Container(
            name="filebeat", image=f"docker.elastic.co/beats/filebeat:{ELASTIC_VERSION}", image_pull_policy="Always",
            args=["-c", "/etc/filebeat/filebeat.yml", "-e"],
            env=[k8s.EnvVar(name="NODE_NAME", value_from=k8s.EnvVarSource(
                field_ref=k8s.ObjectFieldSelector(field_path="spec.nodeName")))],
            resources=resources(Resources("100m", "128Mi", "500m", "512Mi")),
            security_context=k8s.SecurityContext(
                allow_privilege_escalation=False, read_only_root_filesystem=True, run_as_non_root=False, run_as_user=0,
                capabilities=k8s.Capabilities(drop=["ALL"], add=["DAC_READ_SEARCH"]),
                seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")),
            liveness_probe=k8s.Probe(exec=k8s.ExecAction(command=["filebeat", "test", "config", "-c",
                                                                    "/etc/filebeat/filebeat.yml"]),
                                     initial_delay_seconds=30, period_seconds=30),
            readiness_probe=k8s.Probe(exec=k8s.ExecAction(command=["filebeat", "test", "config", "-c",
                                                                     "/etc/filebeat/filebeat.yml"]),
                                      initial_delay_seconds=10, period_seconds=30),
            volume_mounts=[
                k8s.VolumeMount(name="config", mount_path="/etc/filebeat", read_only=True),
                k8s.VolumeMount(name="varlogcontainers", mount_path="/var/log/containers", read_only=True),
                k8s.VolumeMount(name="varlogpods", mount_path="/var/log/pods", read_only=True),
                k8s.VolumeMount(name="data", mount_path="/usr/share/filebeat/data"),
                k8s.VolumeMount(name="tmp", mount_path="/tmp")])
        k8s.KubeDaemonSet(self, "filebeat", metadata=meta("filebeat", NS, annotations=skip(
            _IMAGE_SKIP,
            ("CKV_K8S_40", "reading other containers' log files on the node needs root (read-only mounts)"),
            ("CKV_K8S_23", "see CKV_K8S_40"), ("CKV_K8S_6", "see CKV_K8S_40"),
            ("CKV_K8S_38", "autodiscovery reads pod metadata from the API"),
            ("CKV_K8S_25", "DAC_READ_SEARCH only, to read root-owned container log files"),
        ), part_of=PART), spec=k8s.DaemonSetSpec(
            selector=k8s.LabelSelector(match_labels=selector),
            template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(
                labels={**selector, "app.kubernetes.io/part-of": PART}), spec=k8s.PodSpec(
                service_account_name="filebeat", containers=[container],
                security_context=k8s.PodSecurityContext(seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")),
                volumes=[config_volume("config", "filebeat-config"), tmp_volume(),
                         k8s.Volume(name="varlogcontainers", host_path=k8s.HostPathVolumeSource(path="/var/log/containers")),
                         k8s.Volume(name="varlogpods", host_path=k8s.HostPathVolumeSource(path="/var/log/pods")),
                         k8s.Volume(name="data", empty_dir=k8s.EmptyDirVolumeSource())]))))
