"""A fake `kubectl` with a cluster behind it (objects in a JSON file), for drills without a cluster.

It enforces the rules of kubectl and the API server that the deploy tool can get wrong: flags kubectl
refuses together, namespaced objects only inside an existing namespace (a server dry run creates
nothing, so a namespace in the same file does not count), deleting a namespace deletes what is in it,
`get -o` formats; and it answers as a cluster would (status, managed fields, uid on what it returns).
Run as a script: `fake_cluster.py STATE_FILE kubectl-args...`.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "APIService", "PersistentVolume", "StorageClass"}
PLURALS = {"configmaps": "ConfigMap", "secrets": "Secret", "services": "Service", "serviceaccounts": "ServiceAccount",
           "deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet", "jobs": "Job",
           "cronjobs": "CronJob", "ingresses": "Ingress", "networkpolicies": "NetworkPolicy", "roles": "Role",
           "rolebindings": "RoleBinding", "persistentvolumeclaims": "PersistentVolumeClaim",
           "horizontalpodautoscalers": "HorizontalPodAutoscaler", "poddisruptionbudgets": "PodDisruptionBudget"}


class Refused(Exception):
    pass


def _key(doc: dict[str, Any]) -> str:
    ns = None if doc["kind"] in CLUSTER_SCOPED else doc["metadata"].get("namespace", "default")
    return f"{doc['kind']}/{ns}/{doc['metadata']['name']}"


def _flags(args: list[str]) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    rest: list[str] = []
    it = iter(args)
    for a in it:
        if a == "--":
            rest += ["--", *it]
            break
        if a.startswith("--"):
            name, _, value = a[2:].partition("=")
            flags[name] = value or "true"
        elif a in ("-f", "-n", "-o"):
            flags[a[1:]] = next(it)
        else:
            rest.append(a)
    return flags, rest


class Cluster:
    def __init__(self, state: Path) -> None:
        self.path = state
        data = json.loads(state.read_text()) if state.exists() else {}
        # a new cluster has its own namespaces
        self.objects: dict[str, dict[str, Any]] = data.get("objects", {
            f"Namespace/None/{n}": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
            for n in ("default", "kube-system", "kube-public")})
        self.es_repos: dict[str, Any] = data.get("es_repos", {})

    def save(self) -> None:
        self.path.write_text(json.dumps({"objects": self.objects, "es_repos": self.es_repos}))

    def namespaces(self) -> set[str]:
        return {o["metadata"]["name"] for o in self.objects.values() if o["kind"] == "Namespace"}

    def _docs(self, source: str) -> list[dict[str, Any]]:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        return [d for d in yaml.safe_load_all(text) if d]

    def apply(self, flags: dict[str, str]) -> str:
        allowed = {"server-side", "field-manager", "dry-run", "force-conflicts", "f"}
        if set(flags) - allowed:
            raise Refused(f"unknown flag: --{sorted(set(flags) - allowed)[0]}")
        dry = flags.get("dry-run", "none")
        if dry not in ("none", "server", "client"):
            raise Refused(f'Invalid dry-run value ({dry}). Must be "none", "server", or "client".')
        if dry == "client" and "server-side" in flags:
            raise Refused("--dry-run=client doesn't work with --server-side (did you mean --dry-run=server instead?)")
        if "force-conflicts" in flags and "server-side" not in flags:
            raise Refused("--force-conflicts only works with --server-side")
        if "f" not in flags:
            raise Refused("must specify one of -f and -k")
        out = []
        existing = self.namespaces()
        for doc in self._docs(flags["f"]):
            ns = doc["metadata"].get("namespace")
            if doc["kind"] not in CLUSTER_SCOPED and ns not in existing:
                raise Refused(f'namespaces "{ns}" not found')
            if dry == "none":
                self.objects[_key(doc)] = doc
                if doc["kind"] == "Namespace":
                    existing.add(doc["metadata"]["name"])
            out.append(f"{doc['kind'].lower()}/{doc['metadata']['name']} serverside-applied")
        return "\n".join(out)

    def delete(self, flags: dict[str, str]) -> str:
        for doc in self._docs(flags["f"]):
            key = _key(doc)
            if key not in self.objects and "ignore-not-found" not in flags:
                raise Refused(f'{doc["kind"]} "{doc["metadata"]["name"]}" not found')
            self.objects.pop(key, None)
            if doc["kind"] == "Namespace":  # what lives in a namespace goes with it
                name = doc["metadata"]["name"]
                self.objects = {k: o for k, o in self.objects.items() if o["metadata"].get("namespace") != name}
        return ""

    def get(self, flags: dict[str, str], rest: list[str]) -> str:
        if rest[:1] == ["namespace"]:
            if rest[1] not in self.namespaces():
                raise Refused(f'namespaces "{rest[1]}" not found')
            return rest[1]
        if flags.get("o", "json") not in ("json", "yaml", "name", "wide"):
            raise Refused(f"unable to match a printer suitable for the output format \"{flags['o']}\"")
        kinds = {PLURALS[k] for k in rest[0].split(",")}
        ns = flags.get("n", "default")
        items = [{**o, "metadata": {**o["metadata"], "uid": str(uuid.uuid4()), "resourceVersion": "1",
                                    "managedFields": [{"manager": "kubectl"}],
                                    "creationTimestamp": "2026-12-01T00:00:00Z"}, "status": {}}
                 for o in self.objects.values() if o["kind"] in kinds and o["metadata"].get("namespace") == ns]
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})

    def exec(self, flags: dict[str, str], rest: list[str]) -> str:
        if "--" not in rest:
            raise Refused("exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead")
        pod, command = rest[0], " ".join(rest[rest.index("--") + 1:])
        owner = pod.rsplit("-", 1)[0]
        if f"StatefulSet/{flags.get('n', 'default')}/{owner}" not in self.objects:
            raise Refused(f'pods "{pod}" not found')
        put = re.search(r"_snapshot/(\S+) -X PUT -d '(.*)'", command)
        if put:
            self.es_repos[put.group(1)] = json.loads(put.group(2))
            return '{"acknowledged":true}'
        return json.dumps(self.es_repos)


def main(argv: list[str]) -> int:
    cluster = Cluster(Path(argv[0]))
    verb, flags, rest = argv[1], *_flags(argv[2:])
    try:
        if verb == "version":
            return 0
        if verb == "create" and rest[:1] == ["namespace"]:
            cluster.objects[f"Namespace/None/{rest[1]}"] = {"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": rest[1]}}
            out = f"namespace/{rest[1]} created"
        elif verb == "rollout":
            out = "rolled out"
        elif verb in ("apply", "delete", "get", "exec"):
            handler = getattr(cluster, verb)
            out = handler(flags) if verb in ("apply", "delete") else handler(flags, rest)
        else:
            raise Refused(f'unknown command "{verb}" for "kubectl"')
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cluster.save()
    if out:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
