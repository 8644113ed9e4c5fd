from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deploy_cdk8s.synth import synth_all

    root = tmp_path_factory.mktemp("dist")
    synth_all(root)
    return root


def load_objects(folder: Path) -> list[dict[str, Any]]:
    return [doc for f in sorted(folder.glob("*.yaml")) for doc in yaml.safe_load_all(f.read_text()) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name)
    return matches[0]
