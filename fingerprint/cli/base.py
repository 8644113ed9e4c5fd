"""The `fingerprint` command group and what its commands share: settings, errors, a local service."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from fingerprint.model.allocator import keep_freed_memory
from fingerprint.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def settings_with(**overrides: Any) -> Settings:
    try:
        return load_settings().with_overrides(**overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@click.group()
def main() -> None:
    """Fingerprint identification service."""


def run_local(settings: Settings, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run `action(service)` against the local gallery without HTTP."""
    from fingerprint.gallery.factory import create_store
    from fingerprint.service import FingerprintService
    from fingerprint.telemetry.logging import configure_logging
    from fingerprint.telemetry.metrics import Telemetry

    keep_freed_memory()
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


def errors_as_click(fn: Callable[[], T]) -> T:
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



def on_store(settings: Settings, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run `action(store)` on the configured gallery store, without the model."""
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

    return errors_as_click(lambda: asyncio.run(go()))
