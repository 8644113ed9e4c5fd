"""Synthesize every environment into dist/<env>/ (one YAML file per chart)."""

from __future__ import annotations

import os
from pathlib import Path

from cdk8s import App, YamlOutputType

from deploy_cdk8s.charts.application import ApplicationChart
from deploy_cdk8s.charts.logging import LoggingChart
from deploy_cdk8s.charts.monitoring import MonitoringChart
from deploy_cdk8s.config import ENVIRONMENTS

DIST = Path(__file__).resolve().parent / "dist"


def synth(env_name: str, outdir: Path | None = None) -> Path:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env = ENVIRONMENTS[env_name]
    out = outdir or DIST / env_name
    app = App(outdir=str(out), output_file_extension=".yaml", yaml_output_type=YamlOutputType.FILE_PER_CHART)
    ApplicationChart(app, env)
    MonitoringChart(app, env)
    LoggingChart(app, env)
    app.synth()
    return out


def synth_all(root: Path | None = None) -> list[Path]:
    return [synth(name, (root / name) if root else None) for name in ENVIRONMENTS]
