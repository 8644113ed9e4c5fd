"""The committed recipes load, and a recipe that extends another holds only its differences."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab.training.config import load_config

RECIPES = Path(__file__).parents[2] / "lab" / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.toml")), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_committed_recipe_loads(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.iterations > 0 and cfg.real_sets


def test_stage_two_is_stage_one_plus_its_differences() -> None:
    one, two = load_config(RECIPES / "fast" / "stage1.toml"), load_config(RECIPES / "fast" / "stage2.toml")
    changed = {f.name for f in dataclasses.fields(one) if getattr(one, f.name) != getattr(two, f.name)}
    own = {line.split("=")[0].strip() for line in (RECIPES / "fast" / "stage2.toml").read_text().splitlines()
           if "=" in line and not line.startswith("#")} - {"extends"}
    assert changed <= own and two.dense_weight > 0 and two.init_from == "runs/fast1/checkpoint.pt"


def test_extends_is_relative_and_refuses_cycles_and_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('extends = "b.toml"\niterations = 5\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ValueError, match="cycle"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('extends = "../' + tmp_path.name + '/d.toml"\nwidth = 32\n')
    (tmp_path / "d.toml").write_text("iterations = 7\nreal_sets = ['x']\n")
    cfg = load_config(tmp_path / "c.toml")
    assert (cfg.iterations, cfg.width, cfg.real_sets) == (7, 32, ("x",))
    (tmp_path / "e.toml").write_text('extends = "d.toml"\nnot_a_key = 1\n')
    with pytest.raises(ValueError, match="not_a_key"):
        load_config(tmp_path / "e.toml")
