"""Real training impressions on a fixed canvas, with augmentation close to what sensors do."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.calibration.dataset import Impression, folder_dpi, scan_folder
from fingerprint.model.decode import decode_grayscale, to_target_dpi
from fingerprint.model.preprocess import foreground_centre
from lab.synth.impressions import random_warp
from lab.synth.masters import CANVAS
from lab.training.config import TrainConfig

_MAX_PIXELS = 4_000_000

# Sets whose finger keys name the same people. The two Neurotech sample databases were taken from one
# group of volunteers on two sensors with the same person-finger numbering: with 3.2.0, 38 of their 39
# shared keys are each other's best match across the sensors (docs/experiments.md). So CrossMatch/027-6 and
# UareU/027-6 are one finger, not two. FVC2000_DB1_B and FVC2000_DB2_B hold the same ten fingers (each of
# DB1's first impressions scores highest against DB2's finger of the same number, 0.25 against 0.04).
SAME_PEOPLE = {"Neurotech_CrossMatch_Sample_DB": "Neurotech", "Neurotech_UareU_sample_DB": "Neurotech",
               "FVC2000_DB1_B": "FVC2000_DB1-2", "FVC2000_DB2_B": "FVC2000_DB1-2"}


def finger_identity(key: str) -> str:
    """The finger a `<set>/<finger>` key belongs to, across sets that share people."""
    set_name, finger = key.split("/", 1)
    return f"{SAME_PEOPLE.get(set_name, set_name)}/{finger}"


def load_500dpi(path: Path, dpi: float) -> np.ndarray:
    return to_target_dpi(decode_grayscale(path.read_bytes(), _MAX_PIXELS), dpi)


def to_canvas(gray: np.ndarray, size: int = CANVAS) -> tuple[torch.Tensor, float]:
    """Place the print on a size x size canvas centred on its foreground; pad with its background."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    bg = float(np.median(border))
    img = torch.from_numpy(gray.astype(np.float32))[None, None]
    cy, cx = foreground_centre(img)
    half = size // 2
    padded = F.pad(img - bg, (half, half, half, half)) + bg
    y0, x0 = int(cy[0]), int(cx[0])
    return padded[0, :, y0 : y0 + size, x0 : x0 + size], bg


@dataclass
class RealSet:
    canvases: torch.Tensor  # (N, 1, CANVAS, CANVAS)
    backgrounds: torch.Tensor  # (N,)
    labels: torch.Tensor  # (N,) finger index
    fingers: list[str]
    sensors: torch.Tensor  # (N,) index of the set (sensor) each impression comes from


def load_real(root: Path, set_names: tuple[str, ...], keep: set[str] | None = None, by_identity: bool = True) -> RealSet:
    """Impressions of the `keep` keys (all when None). Labels are fingers (`finger_identity`), so one
    finger's prints from two sensors share a label; `by_identity=False` labels every key apart, as
    the recipes up to 3.2.0 were trained."""
    canvases: list[torch.Tensor] = []
    bgs: list[float] = []
    labels: list[int] = []
    sensors: list[int] = []
    fingers: list[str] = []
    index: dict[str, int] = {}
    for sensor, name in enumerate(set_names):
        folder = root / name
        for imp in scan_folder(folder):
            key = f"{name}/{imp.finger}"
            if keep is not None and key not in keep:
                continue
            canvas, bg = to_canvas(load_500dpi(imp.path, folder_dpi(folder)))
            label = finger_identity(key) if by_identity else key
            if label not in index:
                index[label] = len(fingers)
                fingers.append(label)
            canvases.append(canvas)
            bgs.append(bg)
            labels.append(index[label])
            sensors.append(sensor)
    return RealSet(torch.stack(canvases), torch.tensor(bgs), torch.tensor(labels), fingers, torch.tensor(sensors))


def finger_keys(root: Path, set_names: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in set_names:
        imps: list[Impression] = scan_folder(root / name)
        out[name] = sorted({f"{name}/{i.finger}" for i in imps})
    return out


def split_fingers(root: Path, cfg: TrainConfig) -> tuple[set[str], set[str]]:
    rng = random.Random(cfg.seed)
    train: set[str] = set()
    held: set[str] = set()
    for keys in finger_keys(root, cfg.real_sets).values():
        shuffled = keys[:]
        rng.shuffle(shuffled)
        n_held = max(2, round(len(keys) * cfg.holdout_fraction))
        held.update(shuffled[:n_held])
        train.update(shuffled[n_held:])
    if cfg.merge_same_people:  # the held-out split stays as it was; its fingers' other sensors leave training
        held_fingers = {finger_identity(k) for k in held}
        train = {k for k in train if finger_identity(k) not in held_fingers}
    return train, held


def augment_real(batch: torch.Tensor, bgs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = batch.shape[0]
    out = random_warp(batch, gen, max_rotation_deg=30, max_shift_px=30, elastic_px=5, fill=bgs, scale_range=(0.8, 1.25))
    bg = bgs.view(b, 1, 1, 1)
    gain = 0.6 + 0.6 * torch.rand(b, 1, 1, 1, generator=gen)
    out = bg + (out - bg) * gain
    # partial contact: occasionally hide a half-plane of the print
    hide = torch.rand(b, generator=gen) < 0.3
    if bool(hide.any()):
        size = out.shape[-1]
        coords = torch.arange(size, dtype=torch.float32) - size / 2
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        ang = torch.rand(b, generator=gen) * 2 * np.pi
        off = 40 + 60 * torch.rand(b, generator=gen)
        dist = xx * torch.cos(ang).view(b, 1, 1) + yy * torch.sin(ang).view(b, 1, 1)
        cut = (dist > off.view(b, 1, 1)).unsqueeze(1) & hide.view(b, 1, 1, 1)
        out = torch.where(cut, bg.expand_as(out), out)
    noise = 6 * torch.rand(b, 1, 1, 1, generator=gen) * torch.randn(out.shape, generator=gen)
    return torch.clamp(out + noise, 0, 255)
