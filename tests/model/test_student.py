"""The probe's minutiae network (distilled from LEADER) as the runtime runs it, on the bundled weights."""

from __future__ import annotations

import numpy as np
import torch

from fingerprint.model.student import CELL, StudentNet


def test_the_student_maps_a_print_to_one_output_per_cell() -> None:
    out = StudentNet(8).eval()(torch.zeros(2, 1, 64, 96))
    assert out.shape == (2, 6, 64 // CELL, 96 // CELL)


def test_local_contrast_removes_brightness_and_contrast() -> None:
    from fingerprint.model.student import local_contrast

    ridges = torch.from_numpy(np.sin(np.arange(64) / 2.0)[None, None, None, :].repeat(64, 2).astype(np.float32))
    a, b = local_contrast(128 + 60 * ridges), local_contrast(60 + 45 * ridges)  # above the noise floor (8)
    assert torch.allclose(a[..., 16:-16, 16:-16], b[..., 16:-16, 16:-16], atol=0.1)


def test_the_two_one_dimensional_averages_are_one_square_average() -> None:
    from fingerprint.model.student import NORM_PX, _box_mean

    x = torch.rand(1, 1, 40, 50) * 255
    square = torch.nn.functional.avg_pool2d(x, NORM_PX, 1, NORM_PX // 2, count_include_pad=False)
    assert torch.allclose(_box_mean(x), square, atol=1e-3)




def test_the_served_network_gives_the_same_outputs_and_minutiae() -> None:
    from fingerprint.model.student import decode, served

    torch.manual_seed(0)
    net = StudentNet(8)
    for m in net.modules():  # batch norms that do something: not the identity they start as
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    image = torch.rand(1, 1, 64, 96) * 255
    with torch.inference_mode():
        plain, fast = net(image), served(net)(image.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(plain, fast, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in served(net).modules())
    found, found_fast = decode(plain[0].numpy(), 0.0), decode(fast[0].contiguous().numpy(), 0.0)
    assert len(found) > 10 and found.shape == found_fast.shape
    assert np.allclose(found[:, :2], found_fast[:, :2], atol=1e-3)  # the same minutiae, to a thousandth of a pixel
