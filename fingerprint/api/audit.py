"""The audit trail: who (key id) did what to whom, with what outcome, per request.

Audit events go to their own logger with `event.kind: audit` and `event.dataset: fingerprint.audit`,
so Logstash can route them to a separate, longer-kept index than the debug log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import structlog
from litestar import Request

from fingerprint.security.guards import principal_of

audit_log = structlog.get_logger("fingerprint.audit")


class AuditRecord:
    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.templates: list[str] = []


@contextlib.contextmanager
def audited(request: Request[Any, Any, Any], action: str, subject_id: str | None = None) -> Iterator[AuditRecord]:
    """Log one audit event when the block ends, success or failure (the failure's code included)."""
    record = AuditRecord()
    outcome, code = "success", None
    try:
        yield record
    except Exception as exc:
        from fingerprint.api.errors import to_api_error

        outcome, code = "failure", to_api_error(exc).code
        raise
    finally:
        principal = principal_of(request)
        fields: dict[str, Any] = {
            "event.kind": "audit", "event.dataset": "fingerprint.audit", "event.action": action,
            "event.outcome": outcome, "user.id": principal.key_id if principal else "anonymous",
            "fingerprint.subject_ids": ([subject_id] if subject_id else []) + record.subjects,
        }
        if record.templates:
            fields["fingerprint.template_ids"] = record.templates
        if code:
            fields["error.code"] = code
        audit_log.info("audit", **fields)
