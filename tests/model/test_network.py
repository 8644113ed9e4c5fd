"""The network's shifted views: view 0 is the plain embedding, the others the print moved on the grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fingerprint.model.network import FingerprintNet


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
