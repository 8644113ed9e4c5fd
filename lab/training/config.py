"""The training recipe, read from a TOML file so every run is reproducible from the repo."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fingerprint.model.dense import GridMatcher

TRAINING_PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    version: str = "1.0.0"  # release part of the model version; the checkpoint iteration is appended
    seed: int = 20261125
    embedding_dim: int = 256
    width: int = 48
    synthetic_fingers: int = 3000
    iterations: int = 2600
    batch_size: int = 64
    real_fraction: float = 0.375
    learning_rate: float = 0.002
    weight_decay: float = 0.0005
    warmup_iterations: int = 150
    margin: float = 0.35
    scale: float = 30.0
    validate_every: int = 200
    threads: int = 2
    real_sets: tuple[str, ...] = ("Neurotech_CrossMatch_Sample_DB", "Neurotech_UareU_sample_DB")
    holdout_fraction: float = 0.16
    # one label per finger across sets that share people (real_data.SAME_PEOPLE), and no training print
    # of a held-out finger from another sensor; false reproduces the recipes up to 3.2.0, which labelled
    # each set's keys apart (so a finger's two sensors were pushed apart as different fingers)
    merge_same_people: bool = True
    enhanced_input: bool = False  # train on the Gabor-enhanced channel of the prepared input
    window: int = 320  # crop at 500 dpi (preprocess.prepare), written to the card
    probe_shift_radius: int = 0  # written to the card; calibration scores probes in these shifted views
    # a previous run's checkpoint.pt to continue from (network and class weights), or shipped weights (a bare
    # state dict: the classes then start at their fingers' mean embeddings)
    init_from: str = ""
    # dense matching loss (model/dense.py): batches become pairs of impressions of one finger and a
    # contrastive loss over the shift-searched grid scores is added with this weight; 0 = off
    dense_weight: float = 0.0
    dense_scale: float = 16.0
    dense_margin: float = 0.1
    dense_max_shift: int = 3  # the shift search validation, calibration and the service use (the loss uses 3)
    # probe grid rotations (degrees) tried beside the unturned grid, in the loss and wherever grids are scored
    dense_rotations: tuple[float, ...] = ()
    # the rotations written to the card, calibrated and served, when they differ from the loss's
    serve_dense_rotations: tuple[float, ...] | None = None
    serve_dense_fusion_weight: float = 0.0  # the card's dense_fusion_weight, calibrated with it
    # model versions (full strings) whose templates this model reads: same network, other scoring
    reads_templates_of: tuple[str, ...] = ()
    serve_dense_max_shift: int | None = None  # the card's shift search when it differs from dense_max_shift
    # "bfloat16": the network's forward and backward under bfloat16 autocast where the CPU computes it natively
    # (network.bfloat16_is_native; forward and backward ~1.9x faster there, a whole step 1.3-1.45x: the batch's
    # rendering is not), float32 elsewhere; losses, class weights
    # and the optimiser stay float32. Validation and calibration embed in float32 either way.
    precision: str = "float32"


def served_matcher(cfg: TrainConfig) -> GridMatcher:
    """The comparison the card will describe: the validation's shifts and the loss's rotations unless
    the recipe serves others."""
    rotations = cfg.dense_rotations if cfg.serve_dense_rotations is None else cfg.serve_dense_rotations
    shift = cfg.dense_max_shift if cfg.serve_dense_max_shift is None else cfg.serve_dense_max_shift
    return GridMatcher(shift, rotations, cfg.serve_dense_fusion_weight)


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, object]:
    """A recipe's keys: those of the recipe it `extends` (a path relative to it), then its own on top."""
    path = path.resolve()
    if path in seen:
        raise ValueError(f"recipes extend each other in a cycle: {' -> '.join(str(p) for p in (*seen, path))}")
    raw = tomllib.loads(path.read_text())
    base = raw.pop("extends", None)
    if base is None:
        return raw
    return {**_read(path.parent / str(base), (*seen, path)), **raw}


def load_config(path: Path) -> TrainConfig:
    raw: dict[str, Any] = _read(path)
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown keys in {path}: {sorted(unknown)}")
    for key in ("real_sets", "dense_rotations", "serve_dense_rotations", "reads_templates_of"):
        if key in raw:
            raw[key] = tuple(raw[key])
    if raw.get("precision", "float32") not in TRAINING_PRECISIONS:
        raise ValueError(f"{path}: precision must be one of {TRAINING_PRECISIONS}, not {raw['precision']!r}")
    return TrainConfig(**raw)
