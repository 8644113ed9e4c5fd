"""One JSON object per line on stdout, Elastic Common Schema fields, for Logstash.

structlog renders the service's own events through ecs-logging; uvicorn's and other stdlib loggers
go through python-json-logger with the same core field names, so every line parses the same way.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import ecs_logging
import structlog
from pythonjsonlogger.core import RESERVED_ATTRS

_STD_LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "@timestamp", "levelname": "log.level", "name": "log.logger"},
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            # uvicorn adds `color_message` (the message with ANSI colours): not for a log pipeline
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "loggers": {
        "uvicorn": {"handlers": ["stdout"], "propagate": False},
        "uvicorn.error": {"handlers": ["stdout"], "propagate": False},
        "uvicorn.access": {"handlers": [], "propagate": False},  # the app logs each request itself
    },
    "root": {"handlers": ["stdout"]},
}


def _service_fields(name: str, version: str) -> structlog.types.Processor:
    def add(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service.name", name)
        event_dict.setdefault("service.version", version)
        return event_dict

    return add


def configure_logging(level: str, service_name: str, service_version: str, stream: TextIO = sys.stdout) -> None:
    """Configure structlog and stdlib logging for this process (both are process-global by design)."""
    numeric = logging.getLevelName(level.upper())
    config = {**_STD_LOGGING_CONFIG}
    config["root"] = {**_STD_LOGGING_CONFIG["root"], "level": level.upper()}
    config["loggers"] = {k: {**v, "level": level.upper()} for k, v in _STD_LOGGING_CONFIG["loggers"].items()}
    logging.config.dictConfig(config)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _service_fields(service_name, service_version),
            structlog.processors.format_exc_info,
            cast(structlog.types.Processor, ecs_logging.StructlogFormatter()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
