"""LEADER (pyfing's pretrained minutiae network) as ported to torch, on the bundled weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fingerprint.model.leader import LeaderNet, finder, local_maxima, padded_size, run, window_minutiae
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
    found = window_minutiae(finder(net), image, (0, 0), everything, 16)
    turned = window_minutiae(finder(net), np.ascontiguousarray(np.rot90(image)), (0, 0), everything, 16)
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
    kept = window_minutiae(finder(net), image, (0, 0), half, 16)
    assert len(kept) > 0 and (kept[:, 0] < 192).all()


def test_images_of_any_size_are_padded_to_what_the_network_takes(net: LeaderNet) -> None:
    assert padded_size(300) == 320 and padded_size(320) == 320
    flat = np.full((70, 90), 200, np.uint8)
    assert len(run(net, flat).points) == 0  # no ridges, no minutiae


def _pixels(rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int]]:
    return sorted(zip(rows.tolist(), cols.tolist(), strict=True))


def test_suppression_at_candidates_keeps_what_a_dense_max_pool_keeps() -> None:
    """pyfing suppresses with a 7 x 7 max pool over the whole map; `local_maxima` looks only where the
    probability passes the threshold. Same pixels, on plateaus (ties) and at the map's edges too."""
    rng = np.random.default_rng(7)
    smooth = torch.from_numpy(rng.random((1, 1, 96, 80), dtype=np.float32))
    smooth = torch.nn.functional.avg_pool2d(smooth, 3, 1, 1)  # blobs, as the blurred probability has
    smooth[..., 10:13, 10:13] = 0.9  # a plateau: every pixel ties
    smooth[..., 0, 0] = 0.95  # a corner
    peaks = smooth * (smooth == torch.nn.functional.max_pool2d(smooth, 7, stride=1, padding=3))
    expected = np.nonzero(peaks[0, 0].numpy() >= 0.55)
    ys, xs = local_maxima(smooth[0, 0].numpy(), 0.55)
    assert len(ys) > 10
    assert _pixels(ys, xs) == _pixels(*expected)


def test_minutiae_of_a_print_are_those_of_the_dense_suppression(net: LeaderNet, prints: list[list[np.ndarray]]) -> None:
    image = prints[2][0]
    h, w = image.shape
    canvas = np.full((padded_size(h), padded_size(w)), image[0, 0], np.float32)
    top, left = (canvas.shape[0] - h) // 2, (canvas.shape[1] - w) // 2
    canvas[top : top + h, left : left + w] = image
    with torch.inference_mode():
        maps = net(torch.from_numpy(canvas)[None, None])
    smooth = maps[:, 3:4]
    peaks = (smooth * (smooth == torch.nn.functional.max_pool2d(smooth, 7, stride=1, padding=3)))[0, 0].numpy()
    ys, xs = np.nonzero(peaks[top : top + h, left : left + w] >= 0.6)
    found = run(net, image).points
    assert len(found) >= 10
    assert _pixels(found[:, 1].astype(int), found[:, 0].astype(int)) == _pixels(ys, xs)
