"""`python -m deploy_cdk8s ENV backup DIR` and `restore DIR`: what a lost cluster cannot rebuild from git.

The manifests come back from `synth`; what does not is kept here:
- `objects/<namespace>.yaml`: every object of the deployment's namespaces that is not a Secret, without
  status, managed fields or what the cluster assigns (uid, resourceVersion, clusterIP...);
- `secrets/<namespace>.yaml` (mode 0600): the Secrets, created out of band. `fingerprint-api-secrets`
  holds the template key: without it the encrypted gallery is unreadable, with it anyone holding the
  gallery dump can read it. Store this folder apart from the rest.
- `gallery.dump`: the PostgreSQL gallery, `pg_dump` custom format (templates stay sealed);
- `elasticsearch-snapshot-repositories.json`: where Elasticsearch's snapshots live (the logs themselves
  are in that repository, not here).

`restore` recreates, in order: namespaces, secrets, the gallery, the charts, the other saved objects,
the snapshot repositories.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from deploy_cdk8s.config import APP_NAMESPACE, SECRET_NAME
from deploy_cdk8s.deploy import DeployError

NAMESPACES = (APP_NAMESPACE, "prometheus", "grafana", "logging")
KINDS = ("configmaps,services,serviceaccounts,deployments,statefulsets,daemonsets,jobs,cronjobs,ingresses,"
         "networkpolicies,roles,rolebindings,persistentvolumeclaims,horizontalpodautoscalers,poddisruptionbudgets")
_ASSIGNED = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")
_ES = ("logging", "elasticsearch-0")
_ES_CALL = 'curl -s -u "elastic:$ELASTIC_PASSWORD" -H "Content-Type: application/json" http://localhost:9200'


class BackupError(DeployError):
    pass


def _kubectl(kubectl: str, *args: str, stdin: str | None = None) -> str:
    print("+ kubectl " + " ".join(args), file=sys.stderr)
    proc = subprocess.run([kubectl, *args], capture_output=True, text=True, input=stdin, check=False)
    if proc.returncode:
        raise BackupError(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc.stdout


def _postgres(tool: str, *args: str) -> None:
    path = shutil.which(tool)
    if path is None:
        raise BackupError(f"{tool} is not on PATH: install the PostgreSQL client (Debian: postgresql-client)")
    print(f"+ {tool} " + " ".join(a for a in args if not a.startswith("--dbname")), file=sys.stderr)
    proc = subprocess.run([path, *args], capture_output=True, text=True, check=False)
    if proc.returncode:  # the URL (and its password) stays out of the message
        raise BackupError(f"{tool} failed: {proc.stderr.strip()}")


def portable(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object as it can be applied to another cluster; None for what a controller or the cluster
    creates by itself (pods, replica sets, token secrets, the root CA ConfigMap)."""
    md = obj.get("metadata", {})
    if md.get("ownerReferences") or obj.get("type") == "kubernetes.io/service-account-token" \
            or md.get("name") == "kube-root-ca.crt":
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {k: v for k, v in md.items() if k not in _ASSIGNED}
    annotations = {k: v for k, v in md.get("annotations", {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    out["metadata"].pop("annotations", None)
    if annotations:
        out["metadata"]["annotations"] = annotations
    spec = out.get("spec")
    if obj.get("kind") == "Service" and isinstance(spec, dict):
        out["spec"] = {k: v for k, v in spec.items() if k not in ("clusterIP", "clusterIPs")}
    if obj.get("kind") == "PersistentVolumeClaim" and isinstance(spec, dict):
        out["spec"] = {k: v for k, v in spec.items() if k != "volumeName"}
    return out


def _listed(kubectl: str, kinds: str, ns: str) -> list[dict[str, Any]]:
    items = json.loads(_kubectl(kubectl, "get", kinds, "-n", ns, "-o", "json")).get("items", [])
    return [p for p in (portable(o) for o in items) if p is not None]


def _secret_value(secrets: list[dict[str, Any]], key: str) -> str | None:
    for s in secrets:
        if s["metadata"]["name"] == SECRET_NAME and key in s.get("data", {}):
            return base64.b64decode(s["data"][key]).decode()
    return None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def backup(kubectl: str, target: Path, database_url: str | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    app_secrets: list[dict[str, Any]] = []
    for ns in NAMESPACES:
        (target / "objects").mkdir(exist_ok=True)
        (target / "objects" / f"{ns}.yaml").write_text(yaml.safe_dump_all(_listed(kubectl, KINDS, ns), sort_keys=False))
        secrets = _listed(kubectl, "secrets", ns)
        _write_private(target / "secrets" / f"{ns}.yaml", yaml.safe_dump_all(secrets, sort_keys=False))
        app_secrets += secrets if ns == APP_NAMESPACE else []
    print(f"WARNING: {target / 'secrets'} holds the template key: without it the gallery cannot be read, with it "
          "anyone holding the gallery dump can. Store it apart from the rest of the backup.", file=sys.stderr)
    url = database_url or _secret_value(app_secrets, "database-url")
    if url is None:
        raise BackupError(f"no database URL: {SECRET_NAME} has no database-url and --database-url was not given")
    _postgres("pg_dump", "--format=custom", "--no-owner", f"--file={target / 'gallery.dump'}", f"--dbname={url}")
    repos = _kubectl(kubectl, "exec", "-n", _ES[0], _ES[1], "--", "sh", "-c", f"{_ES_CALL}/_snapshot")
    (target / "elasticsearch-snapshot-repositories.json").write_text(repos)
    print(f"backup written to {target}", file=sys.stderr)


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d] if path.exists() else []


def _apply_docs(kubectl: str, docs: list[dict[str, Any]]) -> None:
    if docs:
        _kubectl(kubectl, "apply", "--server-side", "--field-manager=fingerprint-restore", "--force-conflicts",
                 "-f", "-", stdin=yaml.safe_dump_all(docs, sort_keys=False))


def restore(kubectl: str, source: Path, charts: list[Path], database_url: str | None) -> None:
    if not (source / "gallery.dump").exists():
        raise BackupError(f"{source} holds no gallery.dump: not a backup written by `backup`")
    chart_docs = [d for f in charts for d in _docs(f)]
    _apply_docs(kubectl, [d for d in chart_docs if d["kind"] == "Namespace"])
    secrets = [d for ns in NAMESPACES for d in _docs(source / "secrets" / f"{ns}.yaml")]
    _apply_docs(kubectl, secrets)
    url = database_url or _secret_value(secrets, "database-url")
    if url is None:
        raise BackupError(f"no database URL: the saved {SECRET_NAME} has no database-url and --database-url was not given")
    _postgres("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", f"--dbname={url}",
              str(source / "gallery.dump"))
    for f in charts:
        _kubectl(kubectl, "apply", "--server-side", "--field-manager=fingerprint-deploy", "-f", str(f))
    defined = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in chart_docs}
    saved = [d for ns in NAMESPACES for d in _docs(source / "objects" / f"{ns}.yaml")]
    _apply_docs(kubectl, [d for d in saved if (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
                          not in defined])  # what was made out of band; the charts own the rest
    repos = json.loads((source / "elasticsearch-snapshot-repositories.json").read_text() or "{}")
    if repos:
        _kubectl(kubectl, "rollout", "status", "statefulset/elasticsearch", "-n", _ES[0], "--timeout=10m")
    for name, settings in repos.items():
        body = json.dumps({"type": settings["type"], "settings": settings.get("settings", {})})
        _kubectl(kubectl, "exec", "-n", _ES[0], _ES[1], "--", "sh", "-c",
                 f"{_ES_CALL}/_snapshot/{name} -X PUT -d '{body}'")
    print(f"restored from {source}", file=sys.stderr)
