"""The student's targets, their decoding and the augmentations that move minutiae with the print."""

from __future__ import annotations

import math

import numpy as np
import torch

from lab.distillation.student import CELL, StudentNet, decode, targets
from lab.distillation.train import _turned


def _logits(t: np.ndarray) -> np.ndarray:
    """What a student that had learnt `t` exactly would output."""
    out = t.copy()
    out[0] = np.where(t[0] > 0, 8.0, -8.0)
    out[1:3] = np.log(np.clip(t[1:3], 1e-4, 1 - 1e-4) / (1 - np.clip(t[1:3], 1e-4, 1 - 1e-4)))
    out[5] = np.where(t[5] > 0, 8.0, -8.0)
    return out


def test_decoding_the_targets_gives_back_the_minutiae() -> None:
    # x, y, direction (image frame), ending; a ridge period or more apart
    minutiae = np.array([[10.5, 20.25, 0.3, 1], [40.0, 22.0, 4.0, 0], [13.0, 60.75, 2.5, 1]], np.float32)
    found = decode(_logits(targets(minutiae, 24, 16)))
    found = found[np.argsort(found[:, 1])]
    assert np.allclose(found[:, :2], minutiae[np.argsort(minutiae[:, 1]), :2], atol=0.01)
    # decode reports pyfing's convention (counter-clockwise, y up), as LEADER's port does
    expected = np.remainder(-minutiae[np.argsort(minutiae[:, 1]), 2], 2 * math.pi)
    assert np.allclose(found[:, 2], expected, atol=1e-4)
    assert (found[:, 3] == minutiae[np.argsort(minutiae[:, 1]), 3]).all()


def test_minutiae_outside_the_crop_have_no_target() -> None:
    t = targets(np.array([[-3.0, 5.0, 0.0, 1], [5.0, 24 * CELL + 1.0, 0.0, 1]], np.float32), 24, 24)
    assert t[0].sum() == 0


def test_flips_and_turns_move_positions_and_directions_with_the_print() -> None:
    image = np.zeros((40, 50), np.uint8)
    image[10, 12] = 255  # the minutia
    image[16, 20] = 128  # a point along its direction: atan2(6, 8)
    minutiae = np.array([[12, 10, math.atan2(6, 8), 0]], np.float32)
    for k in range(4):
        for flip in (False, True):
            moved, m = _turned(image, minutiae, k, flip)
            (y0, x0), (y1, x1) = np.argwhere(moved == 255)[0], np.argwhere(moved == 128)[0]
            assert (m[0, 0], m[0, 1]) == (x0, y0)
            turn = math.atan2(y1 - y0, x1 - x0) - m[0, 2]
            assert abs(math.remainder(turn, 2 * math.pi)) < 1e-5


def test_the_student_maps_a_print_to_one_output_per_cell() -> None:
    out = StudentNet(8).eval()(torch.zeros(2, 1, 64, 96))
    assert out.shape == (2, 6, 64 // CELL, 96 // CELL)


def test_sensor_like_renderings_keep_the_crop_a_grey_image_of_the_same_size() -> None:
    from lab.distillation.train import CROP, sensor_like

    rng = np.random.default_rng(0)
    crop = (127 + 100 * np.sin(np.arange(CROP)[None, :] / 2.0) * np.ones((CROP, 1))).astype(np.float32)
    renderings = [sensor_like(crop, rng) for _ in range(20)]
    assert all(r.shape == crop.shape and r.dtype == np.float32 and r.min() >= 0 and r.max() <= 255 for r in renderings)
    assert len({round(float(r.std()), 1) for r in renderings}) > 10  # they differ


def test_local_contrast_removes_brightness_and_contrast() -> None:
    from lab.distillation.student import local_contrast

    ridges = torch.from_numpy(np.sin(np.arange(64) / 2.0)[None, None, None, :].repeat(64, 2).astype(np.float32))
    a, b = local_contrast(128 + 60 * ridges), local_contrast(60 + 45 * ridges)  # above the noise floor (8)
    assert torch.allclose(a[..., 16:-16, 16:-16], b[..., 16:-16, 16:-16], atol=0.1)
