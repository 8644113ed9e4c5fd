"""Every recipe in configs/ is one `fingerprint train` can run, and the cross-sensor fold is the
shipped chain with one real sensor left out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fingerprint.model.training.config import load_config

CONFIGS = Path(__file__).parents[2] / "configs"
CHAIN = ["train.toml", "train-stage2.toml", "train-enhanced.toml", "train-stage4.toml", "train-dense.toml",
         "train-dense-rot.toml"]


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.toml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_committed_recipe_loads(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.iterations > 0
    assert cfg.real_sets


@pytest.mark.parametrize("stage", range(1, 7))
def test_the_fold_is_the_chain_trained_without_the_held_out_sensor(stage: int) -> None:
    chain = load_config(CONFIGS / CHAIN[stage - 1])
    fold = load_config(CONFIGS / "fold" / f"stage{stage}.toml")
    assert fold.real_sets == ("Neurotech_CrossMatch_Sample_DB",)
    assert fold.init_from == ("" if stage == 1 else f"runs/fold{stage - 1}/checkpoint.pt")
    same = {"real_sets": fold.real_sets, "init_from": fold.init_from, "reads_templates_of": fold.reads_templates_of}
    assert dataclasses.replace(chain, **same) == fold


@pytest.mark.parametrize("stage", range(1, 7))
def test_the_merged_chain_is_the_chain_with_fingers_labelled_across_sensors(stage: int) -> None:
    chain = load_config(CONFIGS / CHAIN[stage - 1])
    merged = load_config(CONFIGS / "merged" / f"stage{stage}.toml")
    assert merged.merge_same_people and not chain.merge_same_people
    assert merged.init_from == ("" if stage == 1 else f"runs/merged{stage - 1}/checkpoint.pt")
    same = {"merge_same_people": True, "init_from": merged.init_from, "version": merged.version, "reads_templates_of": ()}
    assert dataclasses.replace(chain, **same) == merged


def test_a_recipe_with_an_unknown_precision_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('precision = "float16"\n')
    with pytest.raises(ValueError, match="precision"):
        load_config(path)


def test_the_fast_chain_is_two_bfloat16_stages_the_second_continuing_the_first() -> None:
    first, second = (load_config(CONFIGS / "fast" / f"stage{n}.toml") for n in (1, 2))
    assert first.precision == second.precision == "bfloat16"
    assert first.enhanced_input and second.enhanced_input and first.merge_same_people and second.merge_same_people
    assert first.dense_weight == 0 and second.dense_weight > 0
    assert first.init_from == "" and second.init_from == "runs/fast1/checkpoint.pt"
    shipped_last = load_config(CONFIGS / "merged" / "stage6.toml")  # served as the shipped chain's last stage
    for key in ("dense_rotations", "serve_dense_rotations", "serve_dense_fusion_weight", "serve_dense_max_shift",
                "window", "probe_shift_radius", "real_sets", "holdout_fraction", "seed"):
        assert getattr(second, key) == getattr(shipped_last, key), key


@pytest.mark.parametrize("stage", (1, 2))
def test_the_width_32_chain_is_the_fast_chain_narrower_and_longer(stage: int) -> None:
    fast = load_config(CONFIGS / "fast" / f"stage{stage}.toml")
    narrow = load_config(CONFIGS / "w32" / f"stage{stage}.toml")
    assert narrow.width == 32 and narrow.iterations > fast.iterations
    assert narrow.init_from == ("" if stage == 1 else "runs/w32s1/checkpoint.pt")
    assert narrow.version != fast.version  # another network: the two never read each other's templates
    same = {"width": 32, "iterations": narrow.iterations, "init_from": narrow.init_from, "version": narrow.version}
    assert dataclasses.replace(fast, **same) == narrow
