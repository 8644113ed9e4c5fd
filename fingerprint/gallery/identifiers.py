"""The one rule for subject ids, applied wherever one enters: bodies, paths, the CLI, the service."""

from __future__ import annotations

import re

# documented in OpenAPI; enforced only by `check_subject_id`, because a searched `$` also matches
# before a final newline ("alice\n" would be stored yet never addressable by path)
SUBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
_SUBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


class InvalidSubjectId(ValueError):
    pass


def check_subject_id(value: str) -> str:
    if not _SUBJECT_ID.fullmatch(value):
        raise InvalidSubjectId("subject_id must be 1-128 characters of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit")
    return value
