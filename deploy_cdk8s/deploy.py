"""`python -m deploy_cdk8s ENV preview|apply|delete|backup DIR|restore DIR`: synth, then kubectl."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from deploy_cdk8s.config import ENVIRONMENTS
from deploy_cdk8s.observability_files import MissingObservability

# apply order: namespaces and RBAC come with each chart; the app last so its monitors exist first
CHART_ORDER = ("monitoring.yaml", "logging.yaml", "application.yaml")


class DeployError(RuntimeError):
    pass


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise DeployError("kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/) to apply")
    return path


def _files(folder: Path) -> list[Path]:
    return [folder / name for name in CHART_ORDER]


def _run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode


def _cluster_reachable(kubectl: str) -> bool:
    return subprocess.run([kubectl, "version", "--request-timeout=5s"], capture_output=True, check=False).returncode == 0


def preview(folder: Path) -> int:
    kubectl = shutil.which("kubectl")
    if kubectl and _cluster_reachable(kubectl):
        # kubectl diff exits 1 when there are differences: that is a successful preview
        codes = [_run([kubectl, "diff", "-f", str(f)]) for f in _files(folder)]
        return 0 if all(c in (0, 1) for c in codes) else max(codes)
    # one YAML stream: `preview | kubectl apply -f -` must see every object of every file
    for f in _files(folder):
        text = f.read_text()
        sys.stdout.write(f"---\n# {f.name}\n{text}{'' if text.endswith(chr(10)) else chr(10)}")
    return 0


def _reachable_kubectl() -> str:
    kubectl = _kubectl()
    if not _cluster_reachable(kubectl):
        raise DeployError("no Kubernetes cluster is reachable with the current kubeconfig "
                          "(offline, `python -m deploy_cdk8s ENV preview` prints what would be applied)")
    return kubectl


def _missing_namespaces(kubectl: str, folder: Path) -> list[str]:
    import yaml

    names = [d["metadata"]["name"] for f in _files(folder) for d in yaml.safe_load_all(f.read_text())
             if d and d.get("kind") == "Namespace"]
    return [n for n in names if subprocess.run([kubectl, "get", "namespace", n], capture_output=True,
                                                check=False).returncode != 0]


def apply(folder: Path, dry_run: str | None, create_namespaces: bool = False) -> int:
    kubectl = _reachable_kubectl()
    extra = [f"--dry-run={dry_run}"] if dry_run else []
    missing = _missing_namespaces(kubectl, folder) if dry_run else []
    if missing and not create_namespaces:
        # the server validates a namespaced object only inside an existing namespace
        raise DeployError(f"namespaces {', '.join(missing)} do not exist yet, so the server cannot dry-run what "
                          "goes in them: add --create-namespaces (creates only those empty namespaces) or apply")
    for name in missing:
        code = _run([kubectl, "create", "namespace", name])
        if code:
            return code
    for f in _files(folder):
        code = _run([kubectl, "apply", "--server-side", "--field-manager=fingerprint-deploy", *extra, "-f", str(f)])
        if code:
            return code
    return 0


def _without_namespaces(folder: Path) -> list[Path]:
    """The charts without their Namespace objects: deleting a namespace deletes what lives only in it (the
    out-of-band Secrets, the TLS certificate, the Prometheus and Elasticsearch volumes)."""
    import yaml

    out = folder / "delete"
    out.mkdir(exist_ok=True)
    kept = []
    for f in _files(folder):
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d and d.get("kind") != "Namespace"]
        target = out / f.name
        target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        kept.append(target)
    return kept


def delete(folder: Path, env: str, yes: bool, purge: bool = False) -> int:
    kubectl = _kubectl()
    if env == "production" and not yes:
        what = "and ITS NAMESPACES, SECRETS AND VOLUMES " if purge else ""
        answer = input(f"Delete the PRODUCTION deployment {what}? Type 'production' to confirm: ")
        if answer.strip() != "production":
            print("aborted", file=sys.stderr)
            return 1
    files = _files(folder) if purge else _without_namespaces(folder)
    for f in reversed(files):
        code = _run([kubectl, "delete", "--ignore-not-found", "-f", str(f)])
        if code:
            return code
    if not purge:
        print("namespaces, secrets and volumes kept (delete --purge removes them too)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy_cdk8s", description=__doc__)
    parser.add_argument("env", choices=[*ENVIRONMENTS, "synth"], help="environment, or `synth` for every one")
    parser.add_argument("action", nargs="?", choices=["preview", "apply", "delete", "backup", "restore"],
                        default="preview")
    parser.add_argument("path", nargs="?", type=Path, default=None, help="backup/restore: the backup folder")
    # kubectl refuses --dry-run=client beside --server-side, and a client dry run needs the cluster's API
    # discovery anyway: the one dry run is the server's
    parser.add_argument("--dry-run", nargs="?", const="server", choices=["server"], default=None,
                        help="apply with kubectl --dry-run=server (validated by the cluster, nothing changed)")
    parser.add_argument("--yes", action="store_true", help="skip the production delete confirmation")
    parser.add_argument("--purge", action="store_true",
                        help="delete: also the namespaces, and with them secrets, certificates and volumes")
    parser.add_argument("--prometheus-operator", action="store_true",
                        help="the cluster runs the Prometheus Operator: ServiceMonitor and PrometheusRule instead of "
                             "the bundled Prometheus, Alertmanager and Grafana")
    parser.add_argument("--create-namespaces", action="store_true",
                        help="apply --dry-run: first create the namespaces that do not exist (empty)")
    parser.add_argument("--database-url", default=None,
                        help="backup/restore: the gallery database (default: database-url of the saved Secret)")
    parser.add_argument("--image", default=None, metavar="REF",
                        help="the image to serve, name:tag[@sha256:...] (default: EnvConfig's image, tag and digest)")
    parser.add_argument("--vector-engine", choices=["memory", "milvus"], default=None,
                        help="identify's first stage: milvus adds Milvus standalone (namespace milvus) and points "
                             "the API at it; the image must be built with --build-arg EXTRAS=milvus")
    parser.add_argument("--outdir", type=Path, default=None)
    parser.add_argument("--observability", type=Path, default=None,
                        help="the repository's observability/ folder (needed when run from an install, not a checkout)")
    args = parser.parse_args(argv)
    if args.observability is not None:
        os.environ["OBSERVABILITY_DIR"] = str(args.observability.resolve())
    try:
        from deploy_cdk8s.synth import synth, synth_all
    except ModuleNotFoundError as exc:
        print(f"error: {exc.name} is missing: install the deploy extra (pip install 'fingerprint-api[deploy]')",
              file=sys.stderr)
        return 2
    try:
        if args.env == "synth":
            # the cdk8s CLI (`cdk8s synth`, cdk8s.yaml) names the folder it expects in CDK8S_OUTDIR
            given = os.environ.get("CDK8S_OUTDIR")
            for folder in synth_all(args.outdir or (Path(given) if given else None)):
                print(folder)
            return 0
        folder = synth(args.env, args.outdir, args.prometheus_operator, args.image, args.vector_engine)
        if args.action == "preview":
            return preview(folder)
        if args.action == "apply":
            return apply(folder, args.dry_run, args.create_namespaces)
        if args.action in ("backup", "restore"):
            from deploy_cdk8s import backup

            if args.path is None:
                raise DeployError(f"{args.action} needs the backup folder: python -m deploy_cdk8s ENV {args.action} DIR")
            if args.action == "backup":
                backup.backup(_reachable_kubectl(), args.path, args.database_url)
            else:
                backup.restore(_reachable_kubectl(), args.path, _files(folder), args.database_url)
            return 0
        return delete(folder, args.env, args.yes, args.purge)
    except (DeployError, MissingObservability, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
