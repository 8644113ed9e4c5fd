"""Fusion weights chosen by sensor folds (plumbing, on made-up pair scores), and a fold network's card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fingerprint.model.weights import DEFAULT_WEIGHTS, leader_path, meta_path, read_meta
from lab.evaluation.minutiae_folds import SCORING_FIELDS, choose, fold_card
from tests.conftest import card_variant


def _scores(cache: Path, name: str, helps: str, seed: int) -> None:
    """A set of 4 fingers x 3 impressions whose genuine pairs stand out only in the `helps` score."""
    rng = np.random.default_rng(seed)
    fingers = np.repeat(np.arange(4), 3)
    same = fingers[:, None] == fingers[None, :]
    parts = {k: rng.uniform(0.0, 0.5, (12, 12)) for k in ("grid", "ours", "leader")}
    parts[helps] = np.where(same, 0.9, parts[helps])
    np.savez(cache / f"{name}.npz", **parts, fingers=fingers.astype(str), impressions=np.tile(np.arange(1, 4), 4))


def test_each_set_is_chosen_for_without_the_sets_of_its_people(tmp_path: Path) -> None:
    _scores(tmp_path, "FVC2000_DB1_B", "ours", 1)
    _scores(tmp_path, "FVC2000_DB2_B", "ours", 2)  # the same people as DB1
    _scores(tmp_path, "FVC2002_DB1_B", "leader", 3)
    report = choose(tmp_path, unscored=("Neurotech_CrossMatch_Sample_DB",))
    db1 = report["FVC2000_DB1_B"]
    assert isinstance(db1, dict) and db1["chosen_on"] == ["FVC2002_DB1_B"]
    assert db1["chosen_on_others"][1] > 0 and "held_out" in db1  # only LEADER's minutiae helped where it was chosen
    neurotech = report["Neurotech_CrossMatch_Sample_DB"]
    assert isinstance(neurotech, dict) and len(neurotech["chosen_on"]) == 3 and "held_out" not in neurotech


def test_a_fold_card_scores_as_the_bundled_model_with_its_own_network(tmp_path: Path) -> None:
    fold = card_variant(tmp_path / "fold", version="fold-x", minutiae_window=0, leader_sha256="", leader_weight=0.0,
                        synthetic_impostor_top=[0.2], synthetic_impostor_scores=10)
    leader_path(fold).unlink()
    fold_card(fold, 2.0, 14.0)
    meta, shipped = read_meta(fold), json.loads(meta_path(DEFAULT_WEIGHTS).read_text())
    card = json.loads(meta_path(fold).read_text())
    assert all(card[k] == shipped[k] for k in SCORING_FIELDS) and leader_path(fold).exists()
    assert (meta.version, meta.minutiae_weight, meta.leader_weight) == ("fold-x", 2.0, 14.0)
    assert meta.synthetic_impostor_top == () and meta.synthetic_impostor_scores == 0
