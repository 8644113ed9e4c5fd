"""The training loop with the dense loss: paired batches, a finite step that learns, validation of
both scores, and thresholds calibrated on the score the card says the service uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fingerprint.model.comparator import Comparator
from fingerprint.model.dense import GridMatcher
from fingerprint.model.network import bfloat16_is_native
from fingerprint.model.preprocess import prepare
from lab.synth.bank import build_bank
from lab.synth.impressions import render_impressions
from lab.training.config import TrainConfig
from lab.training.loop import _Trainer
from lab.training.pair_scores import dense_pair_scores, pair_masks
from lab.training.real_data import RealSet


def _fake_real(masters: torch.Tensor, per_finger: int, seed: int) -> RealSet:
    """Stand-in 'real' fingers rendered from masters (tests must not need ../shared)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.arange(len(masters)).repeat_interleave(per_finger)
    canvases = render_impressions(masters[idx].float() / 127.0, gen)
    return RealSet(canvases, torch.full((len(idx),), 200.0), idx, [f"f{i}" for i in range(len(masters))],
                   torch.zeros(len(idx), dtype=torch.long))


def test_dense_training_pairs_impressions_learns_and_validates(tmp_path: Path) -> None:
    masters = build_bank(tmp_path / "masters", 12)
    cfg = TrainConfig(synthetic_fingers=8, batch_size=8, real_fraction=0.5, iterations=3, warmup_iterations=1,
                      learning_rate=1e-3, width=16, embedding_dim=32, threads=1, dense_weight=1.0,
                      dense_rotations=(-10.0, 10.0), enhanced_input=True)
    real, held = _fake_real(masters[8:10], 3, 1), _fake_real(masters[10:12], 3, 2)
    trainer = _Trainer(cfg, real, held, masters[:8], tmp_path, lambda _: None)

    images, labels = trainer.batch()
    assert images.shape == (8, 2, 160, 160)
    assert torch.equal(labels[0::2], labels[1::2])  # rows 2k and 2k+1: two impressions of one finger
    real_rows = trainer.real_pairs(2)
    assert all(int(a) != int(b) for a, b in real_rows.view(-1, 2))  # distinct impressions
    assert all(int(real.labels[a]) == int(real.labels[b]) for a, b in real_rows.view(-1, 2))

    def loss_of(batch: torch.Tensor) -> float:
        with torch.no_grad():
            return float(trainer.dense_loss(batch, trainer.model.features(batch)))

    twins = images.clone()  # every row's mate is the very same impression
    twins[1::2] = images[0::2]
    strangers = images.clone()  # every row's mate is another finger's impression
    strangers[1::2] = images[1::2].roll(1, dims=0)
    trainer.model.eval()
    assert loss_of(twins) < loss_of(strangers) - 0.5  # the loss rewards a matching mate

    losses = [trainer.train_step()[0] for _ in range(3)]
    assert all(np.isfinite(losses))
    embedding_eer, dense_eer = trainer.validate()
    assert 0.0 <= embedding_eer <= 1.0 and 0.0 <= dense_eer <= 1.0


def test_calibration_scores_probe_rows_against_enrolled_rows() -> None:
    """Genuine/impostor scores come from the [enrolled, probe] orientation the service uses."""
    g = torch.Generator().manual_seed(0)
    cells = torch.nn.functional.normalize(torch.randn(4, 8, 10, 10, generator=g), dim=1)
    grids = torch.round(cells * 127).to(torch.int8)
    grids[1] = grids[0]  # finger 0: two identical impressions
    labels = torch.tensor([0, 0, 1, 2])
    views = torch.nn.functional.normalize(torch.randn(4, 1, 16, generator=g), dim=2)
    genuine, impostor = dense_pair_scores(views, grids, labels, Comparator(GridMatcher(rotations=(-10.0, 10.0))))
    assert genuine.shape == (1,) and impostor.shape == (5,)
    assert genuine[0] > 0.9 and impostor.max() < 0.7
    # calibration: prints 0-1 from one sensor, 2-3 from another; (2, 3) is the only impostor pair
    # within one sensor, so the only one the thresholds see
    sensors = torch.tensor([0, 0, 1, 1])
    genuine_s, impostor_s = dense_pair_scores(views, grids, labels, Comparator(GridMatcher(rotations=(-10.0, 10.0))), sensors)
    assert np.array_equal(genuine_s, genuine) and impostor_s.shape == (1,) and impostor_s[0] == impostor[-1]


def test_calibration_impostors_come_from_one_sensor_and_genuine_pairs_from_any() -> None:
    """Two sensors' prints of one finger are a genuine pair; two sensors' prints of different fingers
    are not an impostor pair the thresholds are set with (a deployment compares one sensor's prints)."""
    labels = np.array([0, 0, 1, 1, 0, 2])
    sensors = np.array([0, 0, 0, 0, 1, 1])
    (i, j), same, impostor = pair_masks(labels, sensors)
    pairs = list(zip(i.tolist(), j.tolist(), strict=True))
    assert {p for p, s in zip(pairs, same, strict=True) if s} == {(0, 1), (2, 3), (0, 4), (1, 4)}
    assert {p for p, m in zip(pairs, impostor, strict=True) if m} == {(0, 2), (0, 3), (1, 2), (1, 3), (4, 5)}
    _, _, pooled = pair_masks(labels)
    assert pooled.sum() == len(pairs) - 4  # without sensors every different-finger pair counts


def test_a_fine_tune_with_relabelled_fingers_starts_each_at_its_prints_mean_embedding(tmp_path: Path) -> None:
    masters = build_bank(tmp_path / "masters", 11)
    cfg = TrainConfig(synthetic_fingers=8, batch_size=8, real_fraction=0.5, iterations=1, warmup_iterations=1,
                      learning_rate=1e-3, width=16, embedding_dim=32, threads=1)
    before = _Trainer(cfg, _fake_real(masters[8:11], 2, 1), _fake_real(masters[8:11], 2, 1), masters[:8], tmp_path,
                      lambda _: None)  # three real fingers
    torch.save({"model": before.model.state_dict(), "classes": before.classes.detach(), "step": 7}, tmp_path / "init.pt")
    merged = _fake_real(masters[8:10], 2, 1)  # now two
    after = _Trainer(cfg, merged, merged, masters[:8], tmp_path, lambda _: None)
    after.initialise_from(tmp_path / "init.pt")
    assert torch.equal(after.classes[:8], before.classes[:8])  # synthetic classes carried over
    embeddings = after.model.eval()(prepare(merged.canvases, cfg.window).tensor)
    for finger in range(2):
        mean = torch.nn.functional.normalize(embeddings[merged.labels == finger].sum(0), dim=0)
        assert torch.nn.functional.cosine_similarity(after.classes[8 + finger], mean, dim=0) > 0.999


def test_a_fine_tune_can_start_from_shipped_weights_without_class_weights(tmp_path: Path) -> None:
    masters = build_bank(tmp_path / "masters", 11)
    cfg = TrainConfig(synthetic_fingers=8, batch_size=8, real_fraction=0.5, iterations=1, warmup_iterations=1,
                      learning_rate=1e-3, width=16, embedding_dim=32, threads=1)
    real = _fake_real(masters[8:11], 2, 1)
    shipped = _Trainer(cfg, real, real, masters[:8], tmp_path, lambda _: None).model
    torch.save(shipped.state_dict(), tmp_path / "fingerprint-net.pt")  # what save_weights writes: no classes
    torch.manual_seed(5)
    after = _Trainer(cfg, real, real, masters[:8], tmp_path, lambda _: None)
    after.initialise_from(tmp_path / "fingerprint-net.pt")
    for name, tensor in shipped.state_dict().items():
        assert torch.equal(after.model.state_dict()[name], tensor)
    assert torch.allclose(after.classes.norm(dim=1), torch.ones(len(after.classes)), atol=1e-5)
    assert torch.allclose(after.classes[:8], after._synthetic_centroids(), atol=1e-6)  # seeded: reproducible
    embeddings = after.model.eval()(prepare(real.canvases, cfg.window).tensor)
    for finger in range(3):
        mean = torch.nn.functional.normalize(embeddings[real.labels == finger].sum(0), dim=0)
        assert torch.nn.functional.cosine_similarity(after.classes[8 + finger], mean, dim=0) > 0.999
    assert after.train_step()[0] > 0  # and it trains from there


def test_a_bfloat16_recipe_trains_under_autocast_where_native_and_keeps_float32_weights(tmp_path: Path) -> None:
    masters = build_bank(tmp_path / "masters", 12)
    cfg = TrainConfig(synthetic_fingers=8, batch_size=8, real_fraction=0.5, iterations=2, warmup_iterations=1,
                      learning_rate=1e-3, width=16, embedding_dim=32, threads=1, dense_weight=1.0,
                      enhanced_input=True, precision="bfloat16")
    trainer = _Trainer(cfg, _fake_real(masters[8:10], 3, 1), _fake_real(masters[10:12], 3, 2), masters[:8], tmp_path,
                       lambda _: None)
    assert trainer.bfloat16 == bfloat16_is_native()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    losses = [trainer.train_step()[0] for _ in range(2)]
    assert all(np.isfinite(losses))
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # the optimiser steps float32 weights
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    assert trainer.classes.dtype == torch.float32


def test_a_float32_recipe_never_autocasts() -> None:
    assert TrainConfig().precision == "float32"  # the committed chains before the fast one reproduce in float32
