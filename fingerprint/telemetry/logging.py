"""One JSON object per line on stdout, Elastic Common Schema fields, for Logstash.

structlog renders the service's own events through ecs-logging, and uvicorn's and other stdlib
loggers go through ecs-logging's stdlib formatter with the same service fields: one format on stdout
(levels lower case, millisecond UTC timestamps, `service.name` on every line).
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import ecs_logging
import structlog

_STD_LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "ecs": {
            "()": "ecs_logging.StdlibFormatter",
            # where in the code and which process: noise beside the app's own lines, which carry neither
            "exclude_fields": ["log.origin", "process", "log.original"],
        }
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "ecs", "stream": "ext://sys.stdout",
                            "filters": ["service"]}},
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


class _ServiceFields(logging.Filter):
    """The service's name and version on every stdlib record, as structlog's processor adds them."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__()
        self._name, self._version = name, version

    def filter(self, record: logging.LogRecord) -> bool:
        setattr(record, "service.name", self._name)
        setattr(record, "service.version", self._version)
        record.__dict__.pop("color_message", None)  # uvicorn's message with ANSI colours: not for a pipeline
        return True


def configure_logging(level: str, service_name: str, service_version: str, stream: TextIO = sys.stdout) -> None:
    """Configure structlog and stdlib logging for this process (both are process-global by design)."""
    numeric = logging.getLevelName(level.upper())
    config = {**_STD_LOGGING_CONFIG}
    config["filters"] = {"service": {"()": _ServiceFields, "name": service_name, "version": service_version}}
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
