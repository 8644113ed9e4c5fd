"""`fingerprint gallery export|import`: copy a gallery between deployments or stores."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fingerprint.cli.base import main, on_store, settings_with


@main.group()
def gallery() -> None:
    """Copy the gallery between deployments or stores (DATA_DIR / DATABASE_URL, TEMPLATE_KEY_FILE)."""


def _progress(done: str) -> Callable[[int], None]:
    def report(n: int) -> None:
        if n % 10_000 == 0:
            click.echo(f"{n} templates {done}", err=True)

    return report


@gallery.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def gallery_export(file: Path, data_dir: Path | None) -> None:
    """Write every template (still sealed) to FILE, or to stdout when FILE is -."""
    from fingerprint.gallery.transfer import export_gallery

    settings = settings_with(data_dir=data_dir)
    report = _progress("exported")

    async def action(store: Any) -> int:
        if str(file) == "-":
            return await export_gallery(store, sys.stdout, report)
        partial = file.with_name(file.name + ".partial")  # never a half-written FILE under its final name
        with partial.open("w") as out:
            count = await export_gallery(store, out, report)
        partial.chmod(0o600)
        partial.replace(file)
        return count

    click.echo(f"exported {on_store(settings, action)} templates", err=True)


@gallery.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def gallery_import(file: Path, data_dir: Path | None) -> None:
    """Add FILE's templates to this gallery (those already here are skipped). Stop a SQLite service first."""
    from fingerprint.gallery.transfer import TransferError, import_gallery

    settings = settings_with(data_dir=data_dir)
    report = _progress("imported")

    async def action(store: Any) -> Any:
        try:
            return await import_gallery(store, file, report)
        except TransferError as exc:
            raise click.ClickException(str(exc)) from exc

    done = on_store(settings, action)
    click.echo(json.dumps({"stored": done.stored, "skipped": done.skipped, "model_versions": done.versions}))


@gallery.command(name="reindex")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="the new model's weights (its card beside them)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def gallery_reindex(weights: Path, data_dir: Path | None) -> None:
    """Build the model at WEIGHTS' templates from the kept enrolment images while the service serves;
    then roll the service out with WEIGHTS_PATH set to them. Resumable: run it again after an interruption."""
    from fingerprint.gallery.reindex import Reindexed, reindex
    from fingerprint.model.embedder import TorchEmbedder

    settings = settings_with(data_dir=data_dir)
    embedder = TorchEmbedder(weights, settings.max_image_pixels, settings.torch_threads, settings.inference_precision)

    def report(r: Reindexed, refused: str | None) -> None:
        if refused:
            click.echo(f"refused by the new model: {refused}", err=True)
        elif r.built % 100 == 0:
            click.echo(f"{r.built} templates of {r.version} built", err=True)

    async def action(store: Any) -> Reindexed:
        return await reindex(store, embedder, report)

    done = on_store(settings, action)
    click.echo(json.dumps({"model_version": done.version, "built": done.built, "already_built": done.already,
                           "refused": done.unusable, "erased_meanwhile": done.gone}))
