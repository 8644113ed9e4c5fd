"""Preprocessing is deterministic, centres the print, and scores quality sensibly on odd inputs."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.model.preprocess import INPUT_SIZE, _halve, prepare


def _t(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr.astype(np.float32))[None, None]


def test_deterministic(prints: list[list[np.ndarray]]) -> None:
    a = prepare(_t(prints[0][0]))
    b = prepare(_t(prints[0][0]))
    assert torch.equal(a.tensor, b.tensor) and torch.equal(a.quality, b.quality)


def test_output_shape_for_any_input_size(prints: list[list[np.ndarray]]) -> None:
    img = prints[0][0]
    for crop in (img[:120, :380], img[:, :150], np.pad(img, ((200, 200), (300, 300)), constant_values=230)):
        out = prepare(_t(crop))
        assert out.tensor.shape == (1, 2, INPUT_SIZE, INPUT_SIZE)  # normalised + enhanced
        assert torch.isfinite(out.tensor).all()


def test_the_window_sets_the_crop_and_the_network_input(prints: list[list[np.ndarray]]) -> None:
    img = _t(prints[0][0])
    small, large = prepare(img, 320), prepare(img, 384)
    assert small.tensor.shape[-1] == 160 and large.tensor.shape[-1] == 192
    # the larger window keeps the smaller one's centre: the middle of its input is the same crop
    assert torch.allclose(large.tensor[:, 0, 16:176, 16:176], small.tensor[:, 0], atol=1e-6)
    assert large.foreground.item() * 384**2 >= small.foreground.item() * 320**2 * 0.99


def test_blank_and_noise_images_score_low_quality(prints: list[list[np.ndarray]]) -> None:
    blank = np.full((400, 400), 240, dtype=np.uint8)
    noise = (np.random.default_rng(1).random((400, 400)) * 255).astype(np.uint8)
    good = prepare(_t(prints[1][0])).quality.item()
    assert prepare(_t(blank)).quality.item() < 0.1
    assert prepare(_t(noise)).quality.item() < 0.5 < good


def test_print_position_does_not_change_the_crop_much(prints: list[list[np.ndarray]]) -> None:
    img = prints[2][0]
    shifted = np.full_like(img, int(np.median(img)))
    shifted[:, 40:] = img[:, :-40]
    a = prepare(_t(img)).tensor.flatten()
    b = prepare(_t(shifted)).tensor.flatten()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
    assert cos > 0.5  # centring on the foreground undoes most of a translation


def test_an_outer_window_gives_minutiae_the_print_beyond_the_crop_and_the_network_the_same_crop(
        prints: list[list[np.ndarray]]) -> None:
    img = _t(prints[0][0])
    own, outer = prepare(img, 320), prepare(img, 320, 400)
    assert outer.tensor.shape == own.tensor.shape and outer.minutiae_map.shape == (1, 200, 200)
    assert torch.equal(own.minutiae_map, own.tensor[:, 1])  # without one, minutiae read the crop's map
    # the normalised channel and the quality are the crop's own; the enhanced channel differs only
    # near the crop's edge, where the outer window lets the Gabor filters see the ridges continue
    assert torch.allclose(outer.tensor[:, 0], own.tensor[:, 0], atol=1e-6)
    assert torch.allclose(outer.quality, own.quality) and torch.allclose(outer.foreground, own.foreground)
    assert torch.equal(outer.minutiae_map[:, 20:180, 20:180], outer.tensor[:, 1])
    centre = slice(24, 136)
    assert torch.allclose(outer.tensor[:, 1, centre, centre], own.tensor[:, 1, centre, centre], atol=1e-5)
    # a print larger than the crop: the outer window sees more of it
    big = torch.nn.functional.interpolate(img, scale_factor=1.6, mode="bilinear", align_corners=False)
    assert (prepare(big, 320, 400).minutiae_map != 0).sum() > (prepare(big, 320).minutiae_map != 0).sum()


def test_an_outer_window_that_does_not_centre_on_the_crop_is_refused(prints: list[list[np.ndarray]]) -> None:
    for outer in (318, 402):
        try:
            prepare(_t(prints[0][0]), 320, outer)
        except ValueError as exc:
            assert "outer window" in str(exc)
        else:
            raise AssertionError(f"outer {outer} accepted")


def test_halving_is_average_pooling_bit_for_bit() -> None:
    gen = torch.Generator().manual_seed(3)
    for shape in ((1, 2, 400, 400), (3, 2, 160, 96)):
        x = torch.randn(shape, generator=gen) * 2.5
        assert torch.equal(_halve(x), F.avg_pool2d(x, 2))
