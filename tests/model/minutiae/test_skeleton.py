"""Thinning leaves one-pixel lines whose ends and forks the crossing numbers find."""

import torch

from fingerprint.model.minutiae.skeleton import crossing_numbers, thin


def test_a_thick_bar_thins_to_a_line_with_two_endings() -> None:
    img = torch.zeros(20, 40, dtype=torch.uint8)
    img[8:13, 5:35] = 1
    skeleton = thin(img)
    assert int(skeleton.sum()) < 40  # one pixel wide, not five
    assert int((skeleton.sum(0) > 1).sum()) == 0  # no column holds two skeleton pixels
    cn = crossing_numbers(skeleton)
    assert int((cn == 1).sum()) == 2
    assert int((cn == 3).sum()) == 0


def test_a_fork_has_one_bifurcation_and_three_endings() -> None:
    img = torch.zeros(40, 40, dtype=torch.uint8)
    img[18:21, 2:20] = 1  # stem
    for i in range(18):  # two branches leaving the stem's end
        img[19 - i : 21 - i, 19 + i : 21 + i] = 1
        img[18 + i : 20 + i, 19 + i : 21 + i] = 1
    cn = crossing_numbers(thin(img))
    assert int((cn == 3).sum()) >= 1
    assert int((cn == 1).sum()) == 3
