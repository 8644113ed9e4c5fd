"""The disaster drill: enroll -> backup -> delete everything -> restore -> the same subjects identify with the
same scores. Real service processes on a real PostgreSQL; the cluster is tests/deploy_cdk8s/fake_cluster.py."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.process import Server

pytestmark = pytest.mark.slow
FAKE = Path(__file__).with_name("fake_cluster.py")


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "cluster.json"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        kubectl = self.bin / "kubectl"
        kubectl.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "{self.state}" "$@"\n')
        kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
        (self.bin / "node").symlink_to(shutil.which("node") or "/usr/bin/node")
        self.out = tmp_path / "out"

    def deploy(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{self.bin}:{Path(sys.executable).parent}:/usr/bin:/bin",
               "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "PYTHONPATH": str(FAKE.parents[2])}
        return subprocess.run([sys.executable, "-m", "deploy_cdk8s", "staging", *args, "--outdir", str(self.out)],
                              capture_output=True, text=True, env=env, input=stdin, check=False, timeout=300)

    def kubectl(self, *args: str, stdin: str = "") -> str:
        proc = subprocess.run([str(self.bin / "kubectl"), *args], capture_output=True, text=True, input=stdin,
                              check=True)
        return proc.stdout

    def objects(self) -> dict[str, Any]:
        return json.loads(self.state.read_text())["objects"]


def _identify(server: Server, image: bytes) -> list[tuple[str, float]]:
    r = httpx.post(server.url + "/api/v1/fingerprint/identify",
                   json={"image": base64.b64encode(image).decode(), "top_k": 3, "threshold": 0.0}, timeout=60)
    assert r.status_code == 200, r.text
    return [(c["subject_id"], c["score"]) for c in r.json()["candidates"]]


def test_backup_delete_restore_drill(postgres: Any, png_prints: list[list[bytes]], tmp_path: Path) -> None:
    from fingerprint.security.template_cipher import TemplateCipher

    url = postgres.create_database(f"drill_{uuid.uuid4().hex[:10]}")
    key_file = tmp_path / "template-keys"
    TemplateCipher.new_key_file(key_file, "k1")
    server = Server(tmp_path / "before", DATABASE_URL=url, TEMPLATE_KEY_FILE=str(key_file))
    try:
        server.wait_ready()
        for i in range(3):
            r = httpx.post(server.url + "/api/v1/fingerprint/enroll", json={
                "image": base64.b64encode(png_prints[i][0]).decode(), "subject_id": f"subject-{i}"}, timeout=60)
            assert r.status_code == 201, r.text
        before = [_identify(server, png_prints[i][1]) for i in range(3)]
    finally:
        server.stop()
    assert [b[0][0] for b in before] == ["subject-0", "subject-1", "subject-2"]

    cluster = Cluster(tmp_path)
    assert cluster.deploy("apply").returncode == 0
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "fingerprint-api-secrets", "namespace": "fingerprint"},
              "data": {"database-url": base64.b64encode(url.encode()).decode(),
                       "template-keys": base64.b64encode(key_file.read_bytes()).decode(),
                       "api-keys": base64.b64encode(b"").decode()}}
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(secret))
    repository = '{"type": "fs", "settings": {"location": "/snapshots"}}'
    cluster.kubectl("exec", "-n", "logging", "elasticsearch-0", "--", "sh", "-c",
                    f"curl http://localhost:9200/_snapshot/nightly -X PUT -d '{repository}'")

    folder = tmp_path / "backup"
    proc = cluster.deploy("backup", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "holds the template key" in proc.stderr and url not in proc.stderr
    assert stat.S_IMODE((folder / "secrets" / "fingerprint.yaml").stat().st_mode) == 0o600
    saved = [d for d in yaml.safe_load_all((folder / "objects" / "fingerprint.yaml").read_text()) if d]
    assert saved and all("status" not in d and "managedFields" not in d["metadata"] and "uid" not in d["metadata"]
                         for d in saved)
    assert not any(d["kind"] == "Secret" for d in saved)  # secrets only in their own folder

    # the disaster: the cluster's namespaces (and with them the Secret and its key) and the database are gone
    proc = cluster.deploy("delete", "--purge")
    assert proc.returncode == 0, proc.stderr
    assert not any("/fingerprint/" in k for k in cluster.objects())
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        name = url.rsplit("/", 1)[1]
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    key_file.unlink()

    proc = cluster.deploy("restore", str(folder))
    assert proc.returncode == 0, proc.stderr
    objects = cluster.objects()
    assert "Deployment/fingerprint/fingerprint-api" in objects
    restored = objects["Secret/fingerprint/fingerprint-api-secrets"]["data"]
    assert json.loads(cluster.state.read_text())["es_repos"]["nightly"]["settings"] == {"location": "/snapshots"}
    restored_key = tmp_path / "restored-template-keys"
    restored_key.write_bytes(base64.b64decode(restored["template-keys"]))
    again = Server(tmp_path / "after", DATABASE_URL=base64.b64decode(restored["database-url"]).decode(),
                   TEMPLATE_KEY_FILE=str(restored_key))
    try:
        again.wait_ready()
        after = [_identify(again, png_prints[i][1]) for i in range(3)]
    finally:
        again.stop()
    assert after == before


def test_a_first_server_dry_run_says_the_namespaces_are_missing_or_creates_only_them(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    proc = cluster.deploy("apply", "--dry-run")
    assert proc.returncode == 2 and "do not exist yet" in proc.stderr and "--create-namespaces" in proc.stderr
    proc = cluster.deploy("apply", "--dry-run", "--create-namespaces")
    assert proc.returncode == 0, proc.stderr
    assert {o["kind"] for o in cluster.objects().values()} == {"Namespace"}  # nothing else was created
    assert cluster.deploy("apply").returncode == 0
    assert "Deployment/fingerprint/fingerprint-api" in cluster.objects()
