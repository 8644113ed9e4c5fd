"""Read the one source of rules, dashboards and pipelines: ../observability."""

from __future__ import annotations

from pathlib import Path

OBSERVABILITY = Path(__file__).resolve().parent.parent / "observability"


def read(relative: str) -> str:
    return (OBSERVABILITY / relative).read_text()
