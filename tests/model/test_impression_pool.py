"""The synthetic impression pool: prepared impressions per finger, drawn per finger, re-rendered a few per step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from fingerprint.model.preprocess import prepare
from fingerprint.model.synth.bank import build_bank
from fingerprint.model.training.config import TrainConfig, load_config
from fingerprint.model.training.impression_pool import ImpressionPool, pool_file
from fingerprint.model.training.loop import _Trainer
from tests.model.test_training import _fake_real


def _prepare(canvases: torch.Tensor) -> torch.Tensor:
    return prepare(canvases, 320).tensor


@pytest.fixture(scope="module")
def masters(tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    return build_bank(tmp_path_factory.mktemp("masters"), 12)


def _slots_of(pool: ImpressionPool, finger: int) -> torch.Tensor:
    assert pool.images is not None
    return pool.images[finger * pool.per_finger : (finger + 1) * pool.per_finger].float()


def _is_one_of(row: torch.Tensor, candidates: torch.Tensor) -> bool:
    return any(torch.equal(row, c) for c in candidates)


def test_the_pool_holds_prepared_impressions_of_every_finger_and_draws_the_asked_finger(masters: torch.Tensor) -> None:
    pool = ImpressionPool(masters[:4], 3, _prepare, torch.Generator().manual_seed(0))
    assert pool.images is not None and pool.images.shape == (12, 2, 160, 160) and pool.images.dtype == torch.bfloat16
    slots = _slots_of(pool, 2)
    assert not torch.equal(slots[0], slots[1])  # different impressions, not copies
    fingers = torch.tensor([2, 0, 3, 2])
    drawn = pool.draw(fingers, torch.Generator().manual_seed(1))
    assert drawn.dtype == torch.float32
    assert all(_is_one_of(row, _slots_of(pool, int(f))) for row, f in zip(drawn, fingers, strict=True))


def test_paired_draws_give_two_different_impressions_of_one_finger(masters: torch.Tensor) -> None:
    pool = ImpressionPool(masters[:3], 2, _prepare, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(5)
    for _ in range(5):
        fingers = torch.tensor([0, 0, 2, 2, 1, 1])
        drawn = pool.draw(fingers, gen, paired=True)
        for k in range(3):
            f = int(fingers[2 * k])
            assert _is_one_of(drawn[2 * k], _slots_of(pool, f)) and _is_one_of(drawn[2 * k + 1], _slots_of(pool, f))
            assert not torch.equal(drawn[2 * k], drawn[2 * k + 1])


def test_a_refresh_re_renders_at_most_the_asked_number_of_slots_and_keeps_their_fingers(masters: torch.Tensor) -> None:
    pool = ImpressionPool(masters[:4], 2, _prepare, torch.Generator().manual_seed(0))
    assert pool.images is not None
    before = pool.images.clone()
    pool.refresh(3, torch.Generator().manual_seed(9))
    changed = [i for i in range(len(pool)) if not torch.equal(before[i], pool.images[i])]
    assert 1 <= len(changed) <= 3
    pool.refresh(0, torch.Generator().manual_seed(9))  # nothing asked, nothing moves
    assert sum(not torch.equal(before[i], pool.images[i]) for i in range(len(pool))) == len(changed)


def test_the_same_seed_builds_the_same_pool(masters: torch.Tensor) -> None:
    a = ImpressionPool(masters[:2], 2, _prepare, torch.Generator().manual_seed(3))
    b = ImpressionPool(masters[:2], 2, _prepare, torch.Generator().manual_seed(3))
    assert a.images is not None and b.images is not None and torch.equal(a.images, b.images)


def test_a_saved_pool_is_read_back_by_the_next_stage_and_a_foreign_file_is_rebuilt(
    masters: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = pool_file(tmp_path, 2, 2, 3, 320, False)
    built = ImpressionPool(masters[:2], 2, _prepare, torch.Generator().manual_seed(3), saved=saved)
    assert saved.exists()
    chunks: list[int] = []
    original = ImpressionPool._rendered
    def counted(self: ImpressionPool, slots: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        chunks.append(len(slots))
        return original(self, slots, gen)

    monkeypatch.setattr(ImpressionPool, "_rendered", counted)
    read = ImpressionPool(masters[:2], 2, _prepare, torch.Generator().manual_seed(3), saved=saved)
    assert torch.equal(read.images, built.images) and chunks == [4]  # only the first chunk, to recognise the file
    torch.save(torch.zeros_like(built.images), saved)  # same shape, other impressions (e.g. an older renderer)
    rebuilt = ImpressionPool(masters[:2], 2, _prepare, torch.Generator().manual_seed(3), saved=saved)
    assert torch.equal(rebuilt.images, built.images) and torch.equal(torch.load(saved), built.images)


def test_a_pool_of_one_impression_per_finger_is_refused(masters: torch.Tensor, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        ImpressionPool(masters[:2], 1, _prepare, torch.Generator())
    path = tmp_path / "r.toml"
    path.write_text("synthetic_pool_per_finger = 1\n")
    with pytest.raises(ValueError, match="synthetic_pool_per_finger"):
        load_config(path)


def test_a_pooled_recipe_trains_on_pool_impressions_of_the_labelled_fingers(masters: torch.Tensor, tmp_path: Path) -> None:
    cfg = TrainConfig(synthetic_fingers=8, batch_size=8, real_fraction=0.5, iterations=2, warmup_iterations=1,
                      learning_rate=1e-3, width=16, embedding_dim=32, threads=1, dense_weight=1.0,
                      enhanced_input=True, synthetic_pool_per_finger=2, synthetic_pool_refresh=1)
    trainer = _Trainer(cfg, _fake_real(masters[8:10], 3, 1), _fake_real(masters[10:12], 3, 2), masters[:8], tmp_path,
                       lambda _: None)
    assert trainer.pool is not None
    images, labels = trainer.batch()
    assert images.shape == (8, 2, 160, 160) and torch.equal(labels[0::2], labels[1::2])
    for row, label in zip(images[:4], labels[:4], strict=True):  # the synthetic rows come from their finger's slots
        assert _is_one_of(row, _slots_of(trainer.pool, int(label)))
    assert all(torch.isfinite(torch.tensor(trainer.train_step()[0])) for _ in range(2))
    plain = _Trainer(dataclasses.replace(cfg, synthetic_pool_per_finger=0), _fake_real(masters[8:10], 3, 1),
                     _fake_real(masters[10:12], 3, 2), masters[:8], tmp_path, lambda _: None)
    assert plain.pool is None


def test_the_pooled_chain_is_the_fast_chain_with_a_pool_and_more_iterations() -> None:
    configs = Path(__file__).resolve().parents[2] / "configs"
    for stage in (1, 2):
        fast, pooled = (load_config(configs / chain / f"stage{stage}.toml") for chain in ("fast", "pool"))
        assert pooled.synthetic_pool_per_finger >= 2 and pooled.iterations > fast.iterations
        same = {"iterations": pooled.iterations, "init_from": pooled.init_from, "synthetic_pool_per_finger": 8,
                "synthetic_pool_refresh": 8}
        assert dataclasses.replace(fast, **same) == pooled
    assert load_config(configs / "pool" / "stage2.toml").init_from == "runs/pool1/checkpoint.pt"
