"""The deploy command drives kubectl as promised (a fake kubectl on PATH records its arguments)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import yaml

FAKE = """#!/usr/bin/env bash
echo "$@" >> "{log}"
case " $* " in *" --dry-run=client "*" --server-side "*|*" --server-side "*" --dry-run=client "*)
  echo "error: --dry-run=client doesn't work with --server-side" >&2; exit 1;; esac
if [ "$1" = "version" ]; then exit {version_rc}; fi
if [ "$1" = "diff" ]; then exit 1; fi
exit 0
"""


def _run(tmp_path: Path, *args: str, version_rc: int = 0, kubectl: bool = True,
         stdin: str = "") -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "kubectl.log"
    log.write_text("")
    node = bin_dir / "node"
    if not node.exists():
        node.symlink_to(shutil.which("node") or "/usr/bin/node")  # cdk8s synthesizes through node
    if kubectl:
        fake = bin_dir / "kubectl"
        fake.write_text(FAKE.format(log=log, version_rc=version_rc))
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    system = ":/usr/bin:/bin" if kubectl else ""  # without: no real kubectl can be found either
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}{system}",
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    proc = subprocess.run([sys.executable, "-m", "deploy_cdk8s", *args, "--outdir", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, input=stdin, check=False, timeout=120)
    return proc, log.read_text().splitlines()


def test_apply_runs_server_side_apply_per_chart(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "staging", "apply")
    assert proc.returncode == 0, proc.stderr
    applies = [c for c in calls if c.startswith("apply")]
    assert [c.rsplit("/", 1)[-1] for c in applies] == ["monitoring.yaml", "logging.yaml", "application.yaml"]
    assert all("--server-side" in c and "--dry-run" not in c for c in applies)


def test_the_dry_run_is_the_servers(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "production", "apply", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert all("--dry-run=server" in c and "--server-side" in c for c in calls if c.startswith("apply"))
    proc, _ = _run(tmp_path, "production", "apply", "--dry-run=client")  # kubectl would refuse it with --server-side
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_preview_diffs_against_a_cluster_or_prints_offline(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "staging", "preview")
    assert proc.returncode == 0 and sum(c.startswith("diff") for c in calls) == 3
    proc, calls = _run(tmp_path, "staging", "preview", version_rc=1)
    assert proc.returncode == 0 and "kind: Deployment" in proc.stdout and not any(c.startswith("diff") for c in calls)
    # one YAML stream holding every object of the three files, as `kubectl apply -f -` would read it
    streamed = [d for d in yaml.safe_load_all(proc.stdout) if d]
    files = [d for f in sorted((tmp_path / "out").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    assert len(streamed) == len(files) > 40


def test_synth_writes_where_the_cdk8s_cli_says(tmp_path: Path) -> None:
    """`cdk8s synth` runs the app with CDK8S_OUTDIR set and fails unless the files land there."""
    env = {**os.environ, "CDK8S_OUTDIR": str(tmp_path / "cli"), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    proc = subprocess.run([sys.executable, "-m", "deploy_cdk8s", "synth"], capture_output=True, text=True, env=env,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("staging", "production"):
        assert sorted(p.name for p in (tmp_path / "cli" / name).glob("*.yaml")) == [
            "application.yaml", "logging.yaml", "monitoring.yaml"]


def test_delete_production_asks_for_confirmation(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "production", "delete", stdin="no\n")
    assert proc.returncode == 1 and not any(c.startswith("delete") for c in calls)
    proc, calls = _run(tmp_path, "production", "delete", stdin="production\n")
    assert proc.returncode == 0
    assert [c.rsplit("/", 1)[-1] for c in calls if c.startswith("delete")] == \
        ["application.yaml", "logging.yaml", "monitoring.yaml"]
    proc, calls = _run(tmp_path, "staging", "delete")
    assert proc.returncode == 0 and sum(c.startswith("delete") for c in calls) == 3


def test_delete_keeps_namespaces_secrets_and_volumes_unless_purged(tmp_path: Path) -> None:
    def deleted_kinds(calls: list[str]) -> set[str]:
        files = [Path(c.rsplit(" ", 1)[-1]) for c in calls if c.startswith("delete")]
        return {d["kind"] for f in files for d in yaml.safe_load_all(f.read_text()) if d}

    proc, calls = _run(tmp_path, "staging", "delete")
    assert proc.returncode == 0 and "Namespace" not in deleted_kinds(calls) and "Deployment" in deleted_kinds(calls)
    proc, calls = _run(tmp_path, "staging", "delete", "--purge")
    assert proc.returncode == 0 and "Namespace" in deleted_kinds(calls)


def test_clear_errors_without_kubectl_or_cluster(tmp_path: Path) -> None:
    proc, _ = _run(tmp_path, "staging", "apply", kubectl=False)
    assert proc.returncode == 2 and "kubectl is not on PATH" in proc.stderr
    proc, _ = _run(tmp_path, "staging", "apply", version_rc=1)
    assert proc.returncode == 2 and "no Kubernetes cluster is reachable" in proc.stderr


def test_the_cdk8s_cli_synthesizes_the_same_files(tmp_path: Path) -> None:
    """The documented `cdk8s synth` (the npm CLI `make test` installs) and `python -m deploy_cdk8s synth`
    write byte-equal files. Before, the CLI exited 1: the app ignored the folder the CLI gave it."""
    repo = Path(__file__).resolve().parents[2]
    cli = repo / ".cdk8s-cli" / "node_modules" / ".bin" / "cdk8s"
    assert cli.exists(), "the cdk8s CLI is installed by `make test` (.cdk8s-cli)"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    proc = subprocess.run([str(cli), "synth", "--output", str(tmp_path / "cli")], cwd=repo, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subprocess.run([sys.executable, "-m", "deploy_cdk8s", "synth", "--outdir", str(tmp_path / "py")], cwd=repo,
                   env=env, check=True, capture_output=True, timeout=300)
    cli_files = sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*.yaml"))
    assert len(cli_files) == 6 and cli_files == sorted(p.relative_to(tmp_path / "py")
                                                       for p in (tmp_path / "py").rglob("*.yaml"))
    for rel in cli_files:
        assert (tmp_path / "cli" / rel).read_bytes() == (tmp_path / "py" / rel).read_bytes(), rel


def test_the_image_to_serve_comes_from_the_command_line_pinned_by_digest(tmp_path: Path) -> None:
    ref = "registry.example:5000/fp/api:1.2.0@sha256:" + "ab" * 32
    proc, _ = _run(tmp_path, "production", "preview", "--image", ref, version_rc=1)
    assert proc.returncode == 0, proc.stderr
    [dep] = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "Deployment"
             and d["metadata"]["name"] == "fingerprint-api"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == ref
    proc, _ = _run(tmp_path, "production", "preview", "--image", "fp-api", version_rc=1)
    assert proc.returncode == 2 and "not an image reference" in proc.stderr
