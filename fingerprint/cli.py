"""The `fingerprint` command an operator uses: serve, enroll/verify/identify on the local gallery,
calibrate a threshold on their sensor, API and template keys. (Training and evaluation: `python -m lab`.)"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from fingerprint.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings().with_overrides(**overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@click.group()
def main() -> None:
    """Fingerprint identification service."""


@main.command()
@click.option("--host", default=None, help="bind address (HOST)")
@click.option("--port", type=int, default=None, help="port (PORT)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="SQLite gallery folder (DATA_DIR)")
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run the HTTP service (one process; scale with replicas)."""
    from fingerprint.server import run_server

    settings = _settings(host=host, port=port, data_dir=data_dir)
    try:
        run_server(settings)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


def _run_local(settings: Settings, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run `action(service)` against the local gallery without HTTP."""
    from fingerprint.gallery.factory import create_store
    from fingerprint.service import FingerprintService
    from fingerprint.telemetry.logging import configure_logging
    from fingerprint.telemetry.metrics import Telemetry

    # results go to stdout as JSON; logs to stderr, warnings and worse only
    configure_logging("WARNING", settings.service_name, "cli", stream=sys.stderr)

    async def go() -> T:
        store = create_store(settings)
        await store.open()
        telemetry = Telemetry(settings.service_name, "cli")
        service = FingerprintService(settings, store, telemetry)
        try:
            await service.load()
            if not service.ready:
                raise click.ClickException(f"model not available: {service.model.error}")
            return await action(service)
        finally:
            await service.stop()
            await store.close()
            telemetry.shutdown()

    return asyncio.run(go())


def _errors_as_click(fn: Callable[[], T]) -> T:
    from fingerprint.api.errors import to_api_error

    try:
        return fn()
    except click.ClickException:
        raise
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    except Exception as exc:
        err = to_api_error(exc)
        if err.code == "internal_error":
            raise
        raise click.ClickException(f"{err.code}: {err.message}") from exc


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--subject", required=True, help="subject id to enroll under")
@click.option("--finger", default=None, help="ISO finger position, e.g. right_index")
@click.option("--dpi", type=float, default=None, help="capture resolution (default: a WSQ header's, else 500)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def enroll(paths: tuple[Path, ...], subject: str, finger: str | None, dpi: float | None, data_dir: Path | None) -> None:
    """Enroll images into the local gallery."""
    settings = _settings(data_dir=data_dir)

    async def action(service: Any) -> list[dict[str, Any]]:
        out = []
        with click.progressbar(paths, label="enrolling", file=sys.stderr) as bar:
            for path in bar:
                try:
                    r = await service.enroll(path.read_bytes(), dpi, subject, finger)
                    out.append({"path": str(path), "template_id": r.template_id, "quality": r.quality})
                except Exception as exc:
                    from fingerprint.api.errors import to_api_error

                    out.append({"path": str(path), "error": to_api_error(exc).code})
        return out

    results = _errors_as_click(lambda: _run_local(settings, action))
    click.echo(json.dumps(results, indent=2))


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--subject", required=True)
@click.option("--dpi", type=float, default=None, help="capture resolution (default: a WSQ header's, else 500)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def verify(path: Path, subject: str, dpi: float | None, data_dir: Path | None) -> None:
    """1:1 against a subject in the local gallery."""

    async def action(service: Any) -> Any:
        return await service.verify(path.read_bytes(), dpi, subject)

    r = _errors_as_click(lambda: _run_local(_settings(data_dir=data_dir), action))
    click.echo(json.dumps(dataclasses.asdict(r), indent=2))


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top-k", type=click.IntRange(1, 1000), default=5)
@click.option("--threshold", type=click.FloatRange(0, 1), default=None)
@click.option("--dpi", type=float, default=None, help="capture resolution (default: a WSQ header's, else 500)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def identify(path: Path, top_k: int, threshold: float | None, dpi: float | None, data_dir: Path | None) -> None:
    """1:N against the local gallery."""

    async def action(service: Any) -> Any:
        return await service.identify(path.read_bytes(), dpi, top_k, threshold)

    r = _errors_as_click(lambda: _run_local(_settings(data_dir=data_dir), action))
    click.echo(json.dumps(dataclasses.asdict(r), indent=2))


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

    settings = _settings()
    embedder = TorchEmbedder(weights or DEFAULT_WEIGHTS, settings.max_image_pixels, precision=settings.inference_precision)
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

    settings = _settings(data_dir=data_dir)
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


@main.group()
def gallery() -> None:
    """Copy the gallery between deployments or stores (DATA_DIR / DATABASE_URL, TEMPLATE_KEY_FILE)."""


def _on_store(settings: Settings, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from fingerprint.gallery.factory import create_store

    async def go() -> T:
        store = create_store(settings)
        await store.open()
        try:
            if hasattr(store, "ensure_schema"):
                await store.ensure_schema()
            return await action(store)
        finally:
            await store.close()

    return _errors_as_click(lambda: asyncio.run(go()))


@gallery.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def gallery_export(file: Path, data_dir: Path | None) -> None:
    """Write every template (still sealed) to FILE, or to stdout when FILE is -."""
    from fingerprint.gallery.transfer import export_gallery

    settings = _settings(data_dir=data_dir)

    def report(n: int) -> None:
        if n % 10_000 == 0:
            click.echo(f"{n} templates exported", err=True)

    async def action(store: Any) -> int:
        if str(file) == "-":
            return await export_gallery(store, sys.stdout, report)
        partial = file.with_name(file.name + ".partial")  # never a half-written FILE under its final name
        with partial.open("w") as out:
            count = await export_gallery(store, out, report)
        partial.chmod(0o600)
        partial.replace(file)
        return count

    click.echo(f"exported {_on_store(settings, action)} templates", err=True)


@gallery.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def gallery_import(file: Path, data_dir: Path | None) -> None:
    """Add FILE's templates to this gallery (those already here are skipped). Stop a SQLite service first."""
    from fingerprint.gallery.transfer import TransferError, import_gallery

    settings = _settings(data_dir=data_dir)

    def report(n: int) -> None:
        if n % 10_000 == 0:
            click.echo(f"{n} templates imported", err=True)

    async def action(store: Any) -> Any:
        try:
            return await import_gallery(store, file, report)
        except TransferError as exc:
            raise click.ClickException(str(exc)) from exc

    done = _on_store(settings, action)
    click.echo(json.dumps({"stored": done.stored, "skipped": done.skipped, "model_versions": done.versions}))


if __name__ == "__main__":
    main()
