"""LEADER (pyfing's pretrained minutiae network) as ported to torch, on the bundled weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fingerprint.model.leader import LeaderNet, padded_size, run, window_minutiae
from fingerprint.model.weights import DEFAULT_WEIGHTS


@pytest.fixture(scope="module")
def net() -> LeaderNet:
    model = LeaderNet().eval()
    model.load_state_dict(torch.load(DEFAULT_WEIGHTS.parent / "leader.pt"))
    return model


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.remainder(a + math.pi, 2 * math.pi) - math.pi


def test_the_port_loads_every_weight_of_the_bundled_file() -> None:
    state = torch.load(DEFAULT_WEIGHTS.parent / "leader.pt")
    assert set(state) == set(LeaderNet().state_dict())
    assert sum(v.numel() for v in state.values()) > 900_000  # pyfing's 0.9 M parameters


def test_minutiae_turn_with_the_print(net: LeaderNet, prints: list[list[np.ndarray]]) -> None:
    """A print turned a quarter turn gives the same minutiae, turned: directions in the template's frame
    (x right, y down), whatever pyfing's own convention."""
    image = prints[0][0]
    everything = np.ones((25, 25), bool)
    found = window_minutiae(net, image, (0, 0), everything, 16)
    turned = window_minutiae(net, np.ascontiguousarray(np.rot90(image)), (0, 0), everything, 16)
    assert len(found) >= 10
    w = image.shape[1]
    # np.rot90: (x, y) -> (y, w - 1 - x); a direction (dx, dy) -> (dy, -dx), its angle minus a quarter turn
    expected = np.stack([found[:, 1], w - 1 - found[:, 0]], 1)
    distance = np.linalg.norm(expected[:, None] - turned[None, :, :2], axis=2)
    nearest = distance.argmin(1)
    same = distance[np.arange(len(found)), nearest] <= 3
    assert same.mean() > 0.7
    turn = _wrap(turned[nearest[same], 2] - (found[same, 2] - math.pi / 2))
    assert np.mean(np.abs(turn) < math.radians(20)) > 0.8


def test_only_minutiae_on_the_print_are_kept(net: LeaderNet, prints: list[list[np.ndarray]]) -> None:
    image = prints[1][0]
    half = np.zeros((25, 25), bool)
    half[:, :12] = True  # the left 192 px of the window
    kept = window_minutiae(net, image, (0, 0), half, 16)
    assert len(kept) > 0 and (kept[:, 0] < 192).all()


def test_images_of_any_size_are_padded_to_what_the_network_takes(net: LeaderNet) -> None:
    assert padded_size(300) == 320 and padded_size(320) == 320
    flat = np.full((70, 90), 200, np.uint8)
    assert len(run(net, flat).points) == 0  # no ridges, no minutiae
