"""Weights load only when their sha256 matches the model card."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from fingerprint.model.embedder import TorchEmbedder
from fingerprint.model.network import FingerprintNet
from fingerprint.model.weights import DEFAULT_WEIGHTS, ModelMeta, WeightsError, load_weights, meta_path, save_weights
from tests.conftest import copy_weights


def test_shipped_weights_load_and_match_card() -> None:
    model, meta = load_weights(DEFAULT_WEIGHTS)
    assert meta.embedding_dim <= 512
    assert 0.0 < meta.threshold_fmr_1e2 <= meta.threshold_fmr_1e3 < 1.0
    assert DEFAULT_WEIGHTS.stat().st_size <= 20 * 1024 * 1024
    out = model(torch.zeros(2, 2, 160, 160))  # prepared images: normalised + enhanced channels
    assert out.shape == (2, meta.embedding_dim)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_the_card_window_sets_the_input_and_grid_size(tmp_path: Path) -> None:
    _, meta = load_weights(DEFAULT_WEIGHTS)
    model = FingerprintNet(meta.embedding_dim, meta.width, enhanced_input=True)
    card = ModelMeta(**{**meta.__dict__, "window": 384, "dense_matching": True})
    saved = save_weights(model, tmp_path / "w.pt", card)
    embedder = TorchEmbedder(tmp_path / "w.pt", 16_000_000)
    assert embedder.meta.window == 384 == saved.window
    (emb,) = embedder.embed([embedder.blank()])
    assert embedder.blank().tensor.shape == (2, 192, 192)
    assert emb.dense is not None and emb.dense.shape == card.grid_shape() == (64, 12, 12)


@pytest.mark.parametrize("window", [300, 64, 2048, "320"])
def test_a_window_the_network_cannot_tile_is_refused(tmp_path: Path, window: object) -> None:
    target = tmp_path / "w.pt"
    copy_weights(target)
    card = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    meta_path(target).write_text(json.dumps({**card, "window": window}))
    with pytest.raises(WeightsError, match="window"):
        load_weights(target)


@pytest.mark.parametrize("outer", [256, 408, 330, 656])
def test_a_minutiae_window_that_cannot_hold_the_crop_or_its_mask_cells_is_refused(tmp_path: Path, outer: int) -> None:
    target = tmp_path / "w.pt"
    copy_weights(target)
    card = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    meta_path(target).write_text(json.dumps({**card, "window": 320, "minutiae_window": outer}))
    with pytest.raises(WeightsError, match="minutiae_window"):
        load_weights(target)


def test_the_card_minutiae_window_sets_where_minutiae_are_found(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    target = tmp_path / "w.pt"
    copy_weights(target)
    card = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    meta_path(target).write_text(json.dumps({**card, "minutiae_weight": 5.0, "minutiae_window": 320}))
    narrow = TorchEmbedder(target, 16_000_000).preprocess(png_prints[0][0], 500.0).minutiae
    meta_path(target).write_text(json.dumps({**card, "minutiae_weight": 5.0, "minutiae_window": 400}))
    embedder = TorchEmbedder(target, 16_000_000)
    wide = embedder.preprocess(png_prints[0][0], 500.0).minutiae
    assert narrow is not None and wide is not None and embedder.blank().minutiae is not None
    assert narrow.foreground.shape == (20, 20) and wide.foreground.shape == (25, 25)
    assert embedder.blank().minutiae.foreground.shape == (25, 25)
    assert wide.foreground.sum() >= narrow.foreground.sum()


def test_cards_that_ask_for_per_pixel_contrast_are_refused(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    """Per-pixel contrast was an experiment that lost and was removed: a card written with it `false` (up to
    4.0.0) still loads and prepares prints as before; one that asks for it is refused, not silently ignored."""
    target = tmp_path / "w.pt"
    copy_weights(target)
    card = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    served = TorchEmbedder(DEFAULT_WEIGHTS, 16_000_000).preprocess(png_prints[0][0], 500.0)
    meta_path(target).write_text(json.dumps({**card, "pixel_statistics": False}))
    assert torch.equal(TorchEmbedder(target, 16_000_000).preprocess(png_prints[0][0], 500.0).tensor, served.tensor)
    meta_path(target).write_text(json.dumps({**card, "pixel_statistics": True}))
    with pytest.raises(WeightsError, match="pixel_statistics"):
        load_weights(target)


def test_hash_mismatch_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "w.pt"
    copy_weights(target)
    shutil.copy(meta_path(DEFAULT_WEIGHTS), meta_path(target))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match"):
        load_weights(target)


def test_missing_or_invalid_card_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "w.pt"
    copy_weights(target)
    with pytest.raises(WeightsError, match="missing"):
        load_weights(target)
    meta_path(target).write_text(json.dumps({"name": "x"}))
    with pytest.raises(WeightsError, match="invalid"):
        load_weights(target)


def test_save_records_the_hash(tmp_path: Path) -> None:
    meta = ModelMeta("t", "0", "", 32, 8, 0.6, 0.7, [])
    saved = save_weights(FingerprintNet(embedding_dim=32, width=8), tmp_path / "m.pt", meta)
    _model, loaded = load_weights(tmp_path / "m.pt")
    assert loaded == saved and len(saved.sha256) == 64


def test_the_card_says_at_which_turned_directions_minutiae_are_compared(tmp_path: Path) -> None:
    target = tmp_path / "w.pt"
    copy_weights(target)
    card = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    for bad in ([0], [60], ["6"], [True]):
        meta_path(target).write_text(json.dumps({**card, "minutiae_direction_offsets": bad}))
        with pytest.raises(WeightsError, match="minutiae_direction_offsets"):
            load_weights(target)
    meta_path(target).write_text(json.dumps({**card, "minutiae_direction_offsets": [-6, 6.0]}))
    _, meta = load_weights(target)
    assert meta.minutiae_direction_offsets == (-6, 6.0)
    assert meta.minutiae_matcher().direction_offsets == pytest.approx((-0.10472, 0.10472), abs=1e-5)
    card.pop("minutiae_direction_offsets", None)  # cards before 3.6.0: directions as found
    meta_path(target).write_text(json.dumps(card))
    assert load_weights(target)[1].minutiae_matcher().direction_offsets == ()


def test_the_cards_synthetic_impostor_tail_is_checked(tmp_path: Path) -> None:
    target = tmp_path / "w.pt"
    copy_weights(target)
    card = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    for top, scores in (([0.1, 0.2], 100), ([1.5], 100), ([0.2, 0.1], 1), (["0.2"], 100)):
        meta_path(target).write_text(json.dumps({**card, "synthetic_impostor_top": top, "synthetic_impostor_scores": scores}))
        with pytest.raises(WeightsError, match="synthetic_impostor_top"):
            load_weights(target)
    meta_path(target).write_text(json.dumps({**card, "synthetic_impostor_top": [0.2, 0.1], "synthetic_impostor_scores": 100}))
    assert load_weights(target)[1].synthetic_impostor_top == (0.2, 0.1)
    card.pop("synthetic_impostor_top", None)  # cards before 5.1.0: no floor
    card.pop("synthetic_impostor_scores", None)
    meta_path(target).write_text(json.dumps(card))
    assert load_weights(target)[1].synthetic_impostor_top == ()


def test_the_leader_weights_are_checked_against_the_card(tmp_path: Path) -> None:
    """A card that fuses LEADER's minutiae loads its network from `leader.pt` beside it, by sha256."""
    from fingerprint.model.weights import leader_path, load_leader, read_meta

    target = tmp_path / "w.pt"
    copy_weights(target)
    shutil.copy(meta_path(DEFAULT_WEIGHTS), meta_path(target))
    card = json.loads(meta_path(target).read_text())
    card.update(leader_weight=9.0, leader_sha256=hashlib.sha256(leader_path(DEFAULT_WEIGHTS).read_bytes()).hexdigest())
    meta_path(target).write_text(json.dumps(card))
    leader_path(target).unlink()
    with pytest.raises(WeightsError, match="cannot be read"):
        load_leader(target, read_meta(target))
    data = bytearray(leader_path(DEFAULT_WEIGHTS).read_bytes())
    leader_path(target).write_bytes(bytes(data))
    assert load_leader(target, read_meta(target)) is not None
    data[len(data) // 2] ^= 0xFF
    leader_path(target).write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match"):
        load_leader(target, read_meta(target))
    card.update(leader_weight=0.0)
    meta_path(target).write_text(json.dumps(card))
    assert load_leader(target, read_meta(target)) is None  # a card without LEADER never reads the file


def test_the_probe_minutiae_weights_are_checked_against_the_card(tmp_path: Path) -> None:
    from fingerprint.model.weights import load_probe_minutiae, probe_minutiae_path, read_meta, sha256_file

    target = tmp_path / "w.pt"
    copy_weights(target)
    card = json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    card.update(probe_minutiae_sha256=sha256_file(probe_minutiae_path(DEFAULT_WEIGHTS)))
    meta_path(target).write_text(json.dumps(card))
    assert load_probe_minutiae(target, read_meta(target)) is not None
    data = bytearray(probe_minutiae_path(DEFAULT_WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    probe_minutiae_path(target).write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match"):
        load_probe_minutiae(target, read_meta(target))
    card.update(probe_minutiae_sha256="")
    meta_path(target).write_text(json.dumps(card))
    assert load_probe_minutiae(target, read_meta(target)) is None  # probes run LEADER; the file is never read
