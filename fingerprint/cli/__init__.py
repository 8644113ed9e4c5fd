"""The `fingerprint` command an operator uses: serve, enroll/verify/identify (on the local gallery or a
running service), calibrate a threshold on their sensor, API and template keys, gallery export/import.
(Training and evaluation: `python -m lab`.)"""

from fingerprint.cli import admin, gallery, matching  # noqa: F401 - each registers its commands on `main`
from fingerprint.cli.base import main

__all__ = ["main"]
