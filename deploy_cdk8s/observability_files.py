"""Read the one source of rules, dashboards and pipelines: the repository's observability/ folder, or
the folder `--observability` (or OBSERVABILITY_DIR) names when the deploy tool runs from an install."""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent / "observability"


class MissingObservability(RuntimeError):
    pass


def folder() -> Path:
    given = os.environ.get("OBSERVABILITY_DIR")
    path = Path(given) if given else _CHECKOUT
    if not (path / "prometheus").is_dir():
        raise MissingObservability(f"no observability files at {path}: run from a checkout, or pass --observability "
                                   "(or OBSERVABILITY_DIR) naming the repository's observability/ folder")
    return path


def read(relative: str) -> str:
    return (folder() / relative).read_text()
