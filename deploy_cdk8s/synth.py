"""Synthesize every environment into dist/<env>/ (one YAML file per chart)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from cdk8s import App, YamlOutputType

from deploy_cdk8s.charts.application import ApplicationChart
from deploy_cdk8s.charts.logging import LoggingChart
from deploy_cdk8s.charts.milvus import MilvusChart
from deploy_cdk8s.charts.monitoring import MonitoringChart
from deploy_cdk8s.charts.operator_monitoring import OperatorMonitoringChart
from deploy_cdk8s.config import ENVIRONMENTS

DIST = Path(__file__).resolve().parent / "dist"


def synth(env_name: str, outdir: Path | None = None, prometheus_operator: bool = False,
          image: str | None = None, vector_engine: str | None = None) -> Path:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env = ENVIRONMENTS[env_name]
    if prometheus_operator:
        env = replace(env, prometheus_operator=True)
    if image:
        env = env.with_image(image)
    if vector_engine:
        env = replace(env, vector_engine=vector_engine)
    out = outdir or DIST / env_name
    app = App(outdir=str(out), output_file_extension=".yaml", yaml_output_type=YamlOutputType.FILE_PER_CHART)
    ApplicationChart(app, env)
    (OperatorMonitoringChart if env.prometheus_operator else MonitoringChart)(app, env)
    LoggingChart(app, env)
    if env.vector_engine == "milvus":
        MilvusChart(app, env)
    app.synth()
    return out


def synth_all(root: Path | None = None) -> list[Path]:
    return [synth(name, (root / name) if root else None) for name in ENVIRONMENTS]
