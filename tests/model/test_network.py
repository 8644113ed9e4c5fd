"""The network's shifted views: view 0 is the plain embedding, the others the print moved on the grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fingerprint.model.network import FingerprintNet, inference_copy


def test_view_zero_is_the_embedding_and_each_view_is_a_grid_shift() -> None:
    torch.manual_seed(0)
    model = FingerprintNet(embedding_dim=32, width=16).eval()
    x = torch.randn(2, 2, 160, 160)
    with torch.inference_mode():
        views = model.shifted_views(x, 1)
        assert views.shape == (2, 9, 32)
        assert torch.allclose(views[:, 0], model(x), atol=1e-6)
        assert torch.allclose(views.norm(dim=-1), torch.ones(2, 9), atol=1e-5)
        feats = model.features(x)
        down_one = F.pad(feats, (0, 0, 1, 0))[..., :-1, :]  # content moved one cell down
        target = model.embed_features(down_one)
        assert (views - target[:, None]).norm(dim=-1).min(dim=1).values.max() < 1e-5
        assert torch.equal(model.shifted_views(x, 0), model(x)[:, None])


def test_the_serving_copy_computes_what_the_trained_network_does() -> None:
    torch.manual_seed(1)
    model = FingerprintNet(embedding_dim=32, width=16)
    with torch.no_grad():  # batch norm statistics that are not the identity, as after training
        for _ in range(3):
            model(torch.randn(4, 2, 160, 160) * 3 + 1)
    model.eval()
    served = inference_copy(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d) for m in served.modules())
    x = torch.randn(3, 2, 160, 160)
    with torch.inference_mode():
        assert torch.allclose(served.features(x), model.features(x), atol=1e-4)
        assert torch.allclose(served.shifted_views(x, 1), model.shifted_views(x, 1), atol=1e-5)
        assert torch.allclose(served.features(x[1:2]), served.features(x)[1:2], atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_the_bfloat16_serving_copy_stays_within_half_a_percent_of_float32() -> None:
    torch.manual_seed(2)
    model = FingerprintNet(embedding_dim=32, width=16).eval()
    x = torch.randn(3, 2, 160, 160)
    with torch.inference_mode():
        exact = inference_copy(model).features(x)
        half = inference_copy(model, torch.bfloat16)
        features = half.features(x)
        assert features.dtype == torch.float32  # the head and everything after stay in float32
        assert float((features - exact).norm() / exact.norm()) < 0.01
        cosines = (half.shifted_views(x, 1) * model.shifted_views(x, 1)).sum(-1)
        assert float(cosines.min()) > 0.999
    assert model.trunk_dtype == torch.float32 and next(model.trunk.parameters()).dtype == torch.float32


def test_a_state_dict_tells_the_width_it_was_trained_at() -> None:
    for width in (16, 32, 48):
        state = FingerprintNet(embedding_dim=32, width=width).state_dict()
        assert FingerprintNet.width_of(state) == width
        FingerprintNet(embedding_dim=32, width=FingerprintNet.width_of(state)).load_state_dict(state)
