"""`python -m lab`: train, evaluate, synthesise and release models. Needs the lab extra and a checkout
(`make lab`); none of it ships in the runtime wheel or the image."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fingerprint.model.allocator import keep_freed_memory
from fingerprint.model.network import PRECISIONS


@click.group()
def main() -> None:
    """The fingerprint model lab."""
    keep_freed_memory()


@main.command()
@click.option("--config", "config_path", type=click.Path(exists=True, path_type=Path),
              default=Path("lab/recipes/fast/stage1.toml"))
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("../shared/fingerprints"), help="folder holding the real training sets")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/train"), help="checkpoints and logs")
@click.option("--cache", type=click.Path(path_type=Path), default=Path("runs/masters"), help="synthetic master bank")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="where to write the final weights")
def train(config_path: Path, data: Path, out: Path, cache: Path, weights: Path | None) -> None:
    """Train the embedding model (resumes from OUT/checkpoint.pt)."""
    import time

    from fingerprint.model.weights import DEFAULT_WEIGHTS
    from lab.training.config import load_config
    from lab.training.loop import train as run_training

    t0 = time.time()

    def log(message: str) -> None:
        click.echo(f"[{time.time() - t0:7.0f}s] {message}", err=True)

    meta = run_training(load_config(config_path), data, out, weights or DEFAULT_WEIGHTS, cache, log)
    click.echo(json.dumps(meta.__dict__, indent=2))


@main.command(name="eval")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--baseline", type=click.Choice(["none", "nbis"]), default="none")
@click.option("--weights", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/eval"), help="JSON report and DET plot")
@click.option("--dpi", type=float, default=None, help="override every folder's resolution")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto",
              help="what the network computes in; auto: as the service would here (INFERENCE_PRECISION)")
@click.option("--folds", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="fusion weights chosen without each set (minutiae_folds choose): out-of-sample figures")
@click.option("--fast-probes", is_flag=True,
              help="probes' LEADER minutiae from the distilled network alone (FAST_ACCEPT=0; as served: fast_accept_folds)")
@click.option("--prepared-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="keep prepared prints here (lab.evaluation.prepared_cache): another network re-uses them")
def evaluate(dirs: tuple[Path, ...], baseline: str, weights: Path | None, out: Path, dpi: float | None,
             precision: str, folds: Path | None, fast_probes: bool, prepared_cache: Path | None) -> None:
    """FVC-protocol evaluation (EER, FMR100, FMR1000, rank-1/CMC, FTE, time per image)."""
    from lab.evaluation.report import run_eval

    run_eval(list(dirs), baseline, weights, out, dpi, click.echo, precision=precision, folds=folds,
             fast_probes=fast_probes, prepared_cache=prepared_cache)


@main.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--fingers", type=click.IntRange(1, 100000), default=10)
@click.option("--impressions", type=click.IntRange(1, 100), default=8)
@click.option("--seed", type=int, default=1)
def synth(out: Path, fingers: int, impressions: int, seed: int) -> None:
    """Write synthetic impressions as OUT/<finger>_<impression>.png."""
    from lab.synth.export import write_synthetic_set

    with click.progressbar(length=fingers, label="synthesising", file=sys.stderr) as bar:
        write_synthetic_set(out, fingers, impressions, seed, progress=bar.update)
    click.echo(f"wrote {fingers * impressions} images to {out}")



if __name__ == "__main__":
    main()
