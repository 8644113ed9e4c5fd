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
