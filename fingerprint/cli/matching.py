"""enroll, verify and identify from the command line: on the local gallery (the model runs in this
process), or with `--url` on a running service through fingerprint.client. Both print the same JSON."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from fingerprint.cli.base import errors_as_click, main, run_local, settings_with

T = TypeVar("T")
_DPI_HELP = "capture resolution (default: a WSQ header's, else 500)"


def _remote(url: str | None, api_key_file: Path | None) -> Any:
    """A client for `url`, its key read from a file (a key on the command line would show in `ps`)."""
    if url is None:
        return None
    try:
        from fingerprint.client import Client
    except ImportError:
        raise click.UsageError("--url needs httpx: pip install 'fingerprint-api[client]'") from None
    key = api_key_file.read_text().strip() if api_key_file else None
    return Client(url, api_key=key)


def _call_remote(fn: Callable[[], T]) -> T:
    from fingerprint.client import FingerprintError

    try:
        return fn()
    except FingerprintError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    except OSError as exc:  # httpx's transport errors are OSErrors underneath
        raise click.ClickException(f"cannot reach the service: {exc}") from exc


def _remote_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                      help="file holding the API key for --url")(fn)
    return click.option("--url", default=None, help="a running service (e.g. https://fp.example.com) instead of "
                        "the local gallery")(fn)


def _echo(result: Any) -> None:
    is_record = dataclasses.is_dataclass(result) and not isinstance(result, type)
    plain = dataclasses.asdict(result) if is_record else msgspec.to_builtins(result)
    click.echo(json.dumps(plain, indent=2))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--subject", required=True, help="subject id to enroll under")
@click.option("--finger", default=None, help="ISO finger position, e.g. right_index")
@click.option("--dpi", type=float, default=None, help=_DPI_HELP)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@_remote_options
def enroll(paths: tuple[Path, ...], subject: str, finger: str | None, dpi: float | None, data_dir: Path | None,
           url: str | None, api_key_file: Path | None) -> None:
    """Enroll images (one template each)."""
    from fingerprint.api.errors import to_api_error

    client = _remote(url, api_key_file)
    if client is not None:
        from fingerprint.client import FingerprintError

        out = []
        with client, click.progressbar(paths, label="enrolling", file=sys.stderr) as bar:
            for path in bar:
                image = path.read_bytes()
                try:
                    r = _call_remote(lambda: client.enroll(image, subject, finger, dpi))  # noqa: B023 - called at once
                    out.append({"path": str(path), "template_id": r.template_id, "quality": r.quality, "nfiq2": r.nfiq2})
                except click.ClickException as exc:
                    cause = exc.__cause__
                    if not isinstance(cause, FingerprintError):
                        raise
                    out.append({"path": str(path), "error": cause.code})
        click.echo(json.dumps(out, indent=2))
        return
    settings = settings_with(data_dir=data_dir)

    async def action(service: Any) -> list[dict[str, Any]]:
        out = []
        with click.progressbar(paths, label="enrolling", file=sys.stderr) as bar:
            for path in bar:
                try:
                    r = await service.enroll(path.read_bytes(), dpi, subject, finger)
                    out.append({"path": str(path), "template_id": r.template_id, "quality": r.quality, "nfiq2": r.nfiq2})
                except Exception as exc:
                    out.append({"path": str(path), "error": to_api_error(exc).code})
        return out

    click.echo(json.dumps(errors_as_click(lambda: run_local(settings, action)), indent=2))


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--subject", required=True)
@click.option("--dpi", type=float, default=None, help=_DPI_HELP)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@_remote_options
def verify(path: Path, subject: str, dpi: float | None, data_dir: Path | None, url: str | None,
           api_key_file: Path | None) -> None:
    """1:1 against a subject's templates."""
    client = _remote(url, api_key_file)
    if client is not None:
        with client:
            _echo(_call_remote(lambda: client.verify(path.read_bytes(), subject, dpi)))
        return

    async def action(service: Any) -> Any:
        return await service.verify(path.read_bytes(), dpi, subject)

    _echo(errors_as_click(lambda: run_local(settings_with(data_dir=data_dir), action)))


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top-k", type=click.IntRange(1, 1000), default=5)
@click.option("--threshold", type=click.FloatRange(0, 1), default=None)
@click.option("--dpi", type=float, default=None, help=_DPI_HELP)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@_remote_options
def identify(path: Path, top_k: int, threshold: float | None, dpi: float | None, data_dir: Path | None,
             url: str | None, api_key_file: Path | None) -> None:
    """1:N against the gallery."""
    client = _remote(url, api_key_file)
    if client is not None:
        with client:
            _echo(_call_remote(lambda: client.identify(path.read_bytes(), top_k, threshold, dpi)))
        return

    async def action(service: Any) -> Any:
        return await service.identify(path.read_bytes(), dpi, top_k, threshold)

    _echo(errors_as_click(lambda: run_local(settings_with(data_dir=data_dir), action)))
