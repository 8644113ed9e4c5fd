"""The student's targets, their decoding and the augmentations that move minutiae with the print."""

from __future__ import annotations

import math

import numpy as np

from fingerprint.model.student import CELL, decode
from lab.distillation.student import targets
from lab.distillation.train import _turned


def _logits(t: np.ndarray) -> np.ndarray:
    """What a student that had learnt `t` exactly would output."""
    out = t[:6].copy()
    out[0] = np.log(np.clip(t[0], 1e-4, 1 - 1e-4) / (1 - np.clip(t[0], 1e-4, 1 - 1e-4)))
    share = np.clip((t[1:3] + 1) / 3, 1e-4, 1 - 1e-4)  # offsets are -1 to 2 cells
    out[1:3] = np.log(share / (1 - share))
    out[5] = np.where(t[5] > 0, 8.0, -8.0)
    return out


def _blobs(minutiae: np.ndarray, h: int, w: int) -> np.ndarray:
    """A smoothed probability as LEADER's looks: a peak of 0.95 at each minutia, fading over a few pixels."""
    yy, xx = np.mgrid[:h, :w]
    p = np.zeros((h, w))
    for x, y, *_ in minutiae:
        p = np.maximum(p, 0.95 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 18.0))
    return np.round(p * 255).astype(np.uint8)


# x, y, direction (image frame), ending; a ridge period or more apart
MINUTIAE = np.array([[10.5, 20.25, 0.3, 1], [40.0, 22.0, 4.0, 0], [13.0, 60.75, 2.5, 1]], np.float32)


def test_decoding_the_targets_gives_back_the_minutiae() -> None:
    found = decode(_logits(targets(MINUTIAE, _blobs(MINUTIAE, 96, 64))))
    found = found[np.argsort(found[:, 1])]
    ordered = MINUTIAE[np.argsort(MINUTIAE[:, 1])]
    assert np.allclose(found[:, :2], ordered[:, :2], atol=0.01)
    # decode reports pyfing's convention (counter-clockwise, y up), as LEADER's port does
    assert np.allclose(found[:, 2], np.remainder(-ordered[:, 2], 2 * math.pi), atol=1e-4)
    assert (found[:, 3] == ordered[:, 3]).all()


def test_a_peak_one_cell_off_still_lands_on_its_minutia() -> None:
    t = targets(MINUTIAE[:1], _blobs(MINUTIAE[:1], 96, 64))
    out = _logits(t)
    row, col = int(MINUTIAE[0, 1]) // CELL, int(MINUTIAE[0, 0]) // CELL
    out[0] = -8.0
    out[0, row + 1, col - 1] = 3.0  # the student's peak, a cell down and left
    (found,) = decode(out)
    assert np.allclose(found[:2], MINUTIAE[0, :2], atol=0.01)


def test_the_presence_target_is_the_highest_probability_in_each_cell() -> None:
    smooth = np.zeros((16, 16), np.uint8)
    smooth[5, 6], smooth[6, 6] = 200, 100
    t = targets(np.zeros((0, 4), np.float32), smooth)
    assert t.shape == (7, 4, 4)
    assert t[0, 1, 1] == np.float32(200 / 255) and t[0].sum() == np.float32(200 / 255)


def test_minutiae_outside_the_crop_have_no_target() -> None:
    t = targets(np.array([[-9.0, 5.0, 0.0, 1], [5.0, 24 * CELL + 5.0, 0.0, 1]], np.float32), np.zeros((96, 96), np.uint8))
    assert t[6].sum() == 0


def test_flips_and_turns_move_positions_and_directions_with_the_print() -> None:
    image = np.zeros((2, 40, 50), np.uint8)
    image[:, 10, 12] = 255  # the minutia, in the print and in the map behind it
    image[:, 16, 20] = 128  # a point along its direction: atan2(6, 8)
    minutiae = np.array([[12, 10, math.atan2(6, 8), 0]], np.float32)
    for k in range(4):
        for flip in (False, True):
            moved, m = _turned(image, minutiae, k, flip)
            assert (moved[0] == moved[1]).all()
            (y0, x0), (y1, x1) = np.argwhere(moved[0] == 255)[0], np.argwhere(moved[0] == 128)[0]
            assert (m[0, 0], m[0, 1]) == (x0, y0)
            turn = math.atan2(y1 - y0, x1 - x0) - m[0, 2]
            assert abs(math.remainder(turn, 2 * math.pi)) < 1e-5


def test_sensor_like_renderings_keep_the_crop_a_grey_image_of_the_same_size() -> None:
    from lab.distillation.train import CROP, sensor_like

    rng = np.random.default_rng(0)
    crop = (127 + 100 * np.sin(np.arange(CROP)[None, :] / 2.0) * np.ones((CROP, 1))).astype(np.float32)
    renderings = [sensor_like(crop, rng) for _ in range(20)]
    assert all(r.shape == crop.shape and r.dtype == np.float32 and r.min() >= 0 and r.max() <= 255 for r in renderings)
    assert len({round(float(r.std()), 1) for r in renderings}) > 10  # they differ


def test_crops_at_another_scale_keep_each_minutia_on_its_probability_peak(monkeypatch) -> None:
    import lab.distillation.train as train

    monkeypatch.setattr(train, "sensor_like", lambda crop, rng: crop)
    minutiae = np.array([[150.0, 140.0, 1.0, 1], [230.0, 260.0, 2.0, 0]], np.float32)
    smooth = _blobs(minutiae, 400, 400)
    prints = [(np.stack([smooth, smooth]).astype(np.float32), minutiae)]  # the print is its own map here
    rng = np.random.default_rng(1)
    for _ in range(30):
        crop, t = train.sample(prints, rng)
        for x, y, *_ in decode(_logits(t)):
            if not (0 <= x < crop.shape[1] - 0.5 and 0 <= y < crop.shape[0] - 0.5):
                continue  # a minutia just outside the crop, found by its probability inside
            assert abs(crop[round(float(y)), round(float(x))] - crop.max()) < 0.05 * 255  # decoded on the peak
