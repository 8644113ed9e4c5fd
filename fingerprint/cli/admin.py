"""Running and administering a deployment: serve, calibrate, API keys, template keys."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from fingerprint.cli.base import main, settings_with
from fingerprint.settings import SettingsError


@main.command()
@click.option("--host", default=None, help="bind address (HOST)")
@click.option("--port", type=int, default=None, help="port (PORT)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="SQLite gallery folder (DATA_DIR)")
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run the HTTP service (one process; scale with replicas)."""
    from fingerprint.server import run_server

    settings = settings_with(host=host, port=port, data_dir=data_dir)
    try:
        run_server(settings)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@main.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--weights", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--dpi", type=float, default=None, help="override every folder's resolution")
@click.option("--enrolled", type=click.IntRange(1, 7), default=1,
              help="impressions your gallery enrolls per finger (a probe meets each finger's best template)")
def calibrate(dirs: tuple[Path, ...], weights: Path | None, dpi: float | None, enrolled: int) -> None:
    """Thresholds for FMR 1 % and 0.1 % measured on your own labelled impressions (folders of
    <finger>_<impression> images from your sensor), and the FMR the card's thresholds give there.
    Set MATCH_THRESHOLD to the suggested value to hold the false match rate on that sensor."""
    from fingerprint.calibration.calibrate import as_report
    from fingerprint.calibration.calibrate import calibrate as run_calibration
    from fingerprint.model.embedder import TorchEmbedder
    from fingerprint.model.weights import DEFAULT_WEIGHTS

    settings = settings_with()
    # probes as the service finds them near a threshold, so it is for the scores the service computes there:
    # LEADER's minutiae, unless the distilled network always decides (FAST_ACCEPT=0)
    embedder = TorchEmbedder(weights or DEFAULT_WEIGHTS, settings.max_image_pixels, precision=settings.inference_precision,
                             fast_probes=settings.fast_probes and settings.fast_accept == 0)
    progress = lambda line: click.echo(line, err=True)  # noqa: E731  (stdout stays the JSON report)
    report = as_report(run_calibration(list(dirs), embedder, dpi, enrolled, progress), embedder.meta.version, enrolled)
    click.echo(json.dumps(report, indent=2))
    if report["suggested_match_threshold"] is None:
        raise click.ClickException("too few impostor pairs to measure FMR 0.1 % (needs 10,000: about 150 "
                                   "images of many fingers); add impressions of more fingers")


@main.command(name="create-key")
@click.option("--scopes", required=True, help="comma-separated: enroll,verify,identify,admin")
@click.option("--name", default="", help="who the key is for (kept beside the hash)")
@click.option("--file", "keys_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the API_KEYS_FILE to append the salted hash to (created with mode 600)")
def create_key(scopes: str, name: str, keys_file: Path) -> None:
    """Create an API key; it is printed once and only its salted hash is stored."""
    from fingerprint.security.api_keys import append_record, new_key

    try:
        key, record = new_key([s.strip() for s in scopes.split(",") if s.strip()], name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    append_record(keys_file, record)
    click.echo(key)
    click.echo(f"key id {record.key_id}, scopes {','.join(record.scopes)}; store the key now: it is not kept", err=True)


@main.command(name="new-template-key")
@click.option("--file", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--id", "key_id", required=True, help="id of the new key (stored beside each sealed template)")
@click.option("--previous", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="current key file: its keys are kept so existing templates stay readable until rotated")
def new_template_key(key_file: Path, key_id: str, previous: Path | None) -> None:
    """Write a template key file whose active key is a new AES-256 key."""
    from fingerprint.security.template_cipher import TemplateCipher

    TemplateCipher.new_key_file(key_file, key_id, previous)
    click.echo(f"wrote {key_file} (active key {key_id}); mount it as TEMPLATE_KEY_FILE, then run rotate-key")


@main.command(name="rotate-key")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def rotate_key(data_dir: Path | None) -> None:
    """Re-encrypt every stored template under the active key of TEMPLATE_KEY_FILE."""
    from fingerprint.gallery.factory import create_store

    settings = settings_with(data_dir=data_dir)
    if settings.template_key_file is None:
        raise click.UsageError("set TEMPLATE_KEY_FILE to the key file whose active key templates should use")

    async def go() -> int:
        store = create_store(settings)
        await store.open()
        try:
            return await store.rotate()
        finally:
            await store.close()

    click.echo(f"re-sealed {asyncio.run(go())} templates")


