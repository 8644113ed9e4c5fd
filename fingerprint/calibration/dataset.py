"""Folders of `<finger>_<impression>.<ext>` images, the layout of FVC and the Neurotech samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg", ".pgm"})

# Sets whose files do not say their true resolution (the README table of ../shared/fingerprints); any
# other folder is taken as 500 dpi unless `--dpi` says otherwise.
KNOWN_DPI = {"Neurotech_UareU_sample_DB": 512.0, "FVC2002_DB2_B": 569.0}


@dataclass(frozen=True)
class Impression:
    finger: str
    impression: int
    path: Path


def scan_folder(folder: Path) -> list[Impression]:
    """Impressions sorted by finger then impression number; files not following the layout are skipped."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        finger, sep, number = path.stem.rpartition("_")
        if not sep or not number.isdigit():
            continue
        found.append(Impression(finger=finger, impression=int(number), path=path))
    found.sort(key=lambda i: (i.finger, i.impression))
    return found


def folder_dpi(folder: Path, default: float = 500.0) -> float:
    return KNOWN_DPI.get(folder.name, default)
