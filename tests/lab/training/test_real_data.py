"""Real training sets: a finger is one finger across the sensors that share people, and a held-out
finger keeps its other sensor's prints out of training. Stand-in image folders, not ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lab.training.config import TrainConfig
from lab.training.real_data import finger_identity, load_real, split_fingers

_SETS = ("Neurotech_CrossMatch_Sample_DB", "Neurotech_UareU_sample_DB")


def _folders(root: Path) -> None:
    """Two sensors sharing people 001-1..001-6 (keys as the Neurotech sets name them), two impressions each;
    the second sensor also has a finger of its own."""
    rng = np.random.default_rng(0)
    for name, fingers in zip(_SETS, (["001-1", "001-2", "001-3", "001-4", "001-5", "001-6"],
                                     ["001-1", "001-2", "001-3", "001-4", "001-5", "001-6", "002-1"]), strict=True):
        (root / name).mkdir(parents=True)
        for f in fingers:
            for i in (1, 2):
                Image.fromarray(rng.integers(0, 255, (128, 128), dtype=np.uint8)).save(root / name / f"{f}_{i}.png")


def test_the_same_key_on_two_sensors_that_share_people_is_one_finger(tmp_path: Path) -> None:
    _folders(tmp_path)
    assert finger_identity("Neurotech_CrossMatch_Sample_DB/027-6") == finger_identity("Neurotech_UareU_sample_DB/027-6")
    assert finger_identity("FVC2002_DB1_B/1") != finger_identity("FVC2000_DB1_B/1")
    real = load_real(tmp_path, _SETS)
    assert len(real.fingers) == 7 and len(real.labels) == 26
    cross, uru = real.labels[:12], real.labels[12:24]
    assert cross.tolist() == uru.tolist()  # 001-1 on either sensor carries one label
    assert real.sensors.tolist() == [0] * 12 + [1] * 14  # while each print keeps the sensor it came from
    # the recipes up to 3.2.0 labelled each set's keys apart
    assert len(load_real(tmp_path, _SETS, by_identity=False).fingers) == 13


def test_a_held_out_finger_is_not_trained_on_from_its_other_sensor(tmp_path: Path) -> None:
    _folders(tmp_path)
    cfg = TrainConfig(real_sets=_SETS, holdout_fraction=0.34, merge_same_people=True)
    train, held = split_fingers(tmp_path, cfg)
    held_fingers = {finger_identity(k) for k in held}
    assert held and train
    assert not {finger_identity(k) for k in train} & held_fingers
    old_train, old_held = split_fingers(tmp_path, TrainConfig(real_sets=_SETS, holdout_fraction=0.34, merge_same_people=False))
    assert old_held == held  # the held-out split itself does not move
    assert {finger_identity(k) for k in old_train} & held_fingers  # before: it leaked
