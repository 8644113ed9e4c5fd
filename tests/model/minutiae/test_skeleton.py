"""Thinning leaves one-pixel lines whose ends and forks the crossing numbers find."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.model.minutiae.extract import _directions
from fingerprint.model.minutiae.skeleton import _NEIGHBOURS, _tables, branch_directions, ridge_ends_and_forks, thin


def test_a_thick_bar_thins_to_a_line_with_two_endings() -> None:
    img = torch.zeros(20, 40, dtype=torch.uint8)
    img[8:13, 5:35] = 1
    skeleton = thin(img)
    assert int(skeleton.sum()) < 40  # one pixel wide, not five
    assert int((skeleton.sum(0) > 1).sum()) == 0  # no column holds two skeleton pixels
    _, _, numbers = ridge_ends_and_forks(skeleton)
    assert sorted(numbers.tolist()) == [1, 1]


def test_a_fork_has_one_bifurcation_and_three_endings() -> None:
    img = torch.zeros(40, 40, dtype=torch.uint8)
    img[18:21, 2:20] = 1  # stem
    for i in range(18):  # two branches leaving the stem's end
        img[19 - i : 21 - i, 19 + i : 21 + i] = 1
        img[18 + i : 20 + i, 19 + i : 21 + i] = 1
    _, _, numbers = ridge_ends_and_forks(thin(img))
    assert int((numbers == 3).sum()) >= 1
    assert int((numbers == 1).sum()) == 3


def neighbour_codes(binary: np.ndarray) -> np.ndarray:
    """Each pixel's neighbourhood byte from eight shifted copies: bit k is the neighbour P(k+2)."""
    h, w = binary.shape
    p = np.pad(binary, 1)
    code = np.zeros((h, w), np.uint8)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        code |= p[dy : dy + h, dx : dx + w] << np.uint8(bit)
    return code


def _whole_image_thinning(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen as written: every pixel looked at in every sub-iteration until nothing changes."""
    first, second, _ = _tables()
    image = binary.copy()
    while True:
        changed = False
        for table in (first, second):
            delete = table[neighbour_codes(image)] & (image > 0)
            image[delete] = 0
            changed |= bool(delete.any())
        if not changed:
            return image


def test_thinning_only_revisits_changed_pixels_yet_matches_the_whole_image_algorithm() -> None:
    rng = np.random.default_rng(7)
    for _ in range(6):
        # smoothed noise thresholded: blobs, bars and holes of many shapes, with long staircases
        noise = torch.from_numpy(rng.standard_normal((1, 1, 96, 96)).astype(np.float32))
        smooth = F.avg_pool2d(noise, 7, stride=1, padding=3)[0, 0]
        binary = (smooth > 0).to(torch.uint8)
        assert np.array_equal(thin(binary).numpy(), _whole_image_thinning(binary.numpy()))


def test_ends_and_forks_are_the_whole_image_crossing_numbers_of_1_and_3() -> None:
    rng = np.random.default_rng(11)
    crossing = _tables()[2]
    for _ in range(4):
        noise = torch.from_numpy(rng.standard_normal((1, 1, 80, 120)).astype(np.float32))
        skeleton = thin((F.avg_pool2d(noise, 5, stride=1, padding=2)[0, 0] > 0).to(torch.uint8))
        image = skeleton.numpy()
        numbers = crossing[neighbour_codes(image)] * image
        rows, cols, found = ridge_ends_and_forks(skeleton)
        expected = np.nonzero((numbers == 1) | (numbers == 3))
        assert len(rows) > 10
        assert np.array_equal(rows, expected[0]) and np.array_equal(cols, expected[1])
        assert np.array_equal(found, numbers[expected])


def _ending_and_fork() -> np.ndarray:
    """A ridge ending at (row 10, column 10) running right, and a fork at (30, 20): stem to the left, arms up
    and down to the right."""
    sk = np.zeros((45, 45), bool)
    sk[10, 10:30] = True
    sk[30, 5:21] = True
    for i in range(1, 10):
        sk[30 - i, 20 + i] = sk[30 + i, 20 + i] = True
    return sk


def test_branches_are_followed_from_each_point() -> None:
    padded = np.pad(_ending_and_fork(), 11)
    vectors, owner = branch_directions(padded, np.array([10, 30]) + 11, np.array([10, 20]) + 11, 10)
    assert owner.tolist() == [0, 1, 1, 1]
    np.testing.assert_allclose(vectors[0], [1.0, 0.0])  # the ending's ridge runs right
    fork = {tuple(np.round(v, 2)) for v in vectors[1:]}
    assert fork == {(-1.0, 0.0), (0.71, -0.71), (0.71, 0.71)}


def test_an_ending_points_away_from_its_ridge_and_a_fork_towards_its_stem() -> None:
    """Whatever way the orientation field's angle is given (0 or pi for a horizontal ridge), the traced
    branches decide the direction: both minutiae point left here."""
    for theta in (0.0, math.pi):
        angles = _directions(_ending_and_fork(), np.array([10, 30]), np.array([10, 20]), torch.full((2,), theta))
        np.testing.assert_allclose(angles.numpy(), [math.pi, math.pi], atol=1e-6)
