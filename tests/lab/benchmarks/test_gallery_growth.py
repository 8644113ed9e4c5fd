"""The gallery-growth benchmark: its per-set measures on hand-made search vectors (plumbing), and the whole
benchmark at a toy size with the real model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fingerprint.gallery.impostors import ImpostorSample
from fingerprint.gallery.index import GalleryIndex
from fingerprint.model.embedder import Embedding
from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta
from lab.benchmarks.gallery_growth import measure, measure_set
from lab.benchmarks.growth_gallery import Gallery, Print, build, subject_of


def _unit(v: list[float]) -> np.ndarray:
    a = np.zeros(16, np.float32)
    a[: len(v)] = v
    return a / np.linalg.norm(a)


def test_verify_counts_and_lists_the_impostor_attempts_it_accepts() -> None:
    a, b, c = _unit([1, 0, 0]), _unit([0, 1, 0]), _unit([0, 0, 1])
    prints = [Print("S", "1", 1, Embedding(a[None], None), None), Print("S", "2", 1, Embedding(b[None], None), None),
              Print("S", "3", 1, Embedding(c[None], None), None),
              Print("S", "1", 2, Embedding(_unit([1, 0.1, 0])[None], None), None),  # its own finger
              Print("S", "2", 2, Embedding(_unit([0.1, 0, 1])[None], None), None)]  # finger 3's look-alike
    index = GalleryIndex(16)
    enrolled = {("S", "1"): 0, ("S", "2"): 1, ("S", "3"): 2}
    for (s, f), k in enrolled.items():
        index.add(f"{s}/{f}", subject_of(s, f), None, prints[k].embedding.views[0])
    r = measure_set(prints, Gallery(index, enrolled, threshold=0.9, source="setting", sample=ImpostorSample()), "S")
    assert r["probes"] == 2 and r["rank1"] == 0.5
    assert r["identify_named_wrong"] == 0.5 and r["wrong_names"] == ["2_2 -> S/3 (0.9975)"]
    assert r["impostor_verifications"] == 4 and r["verify_fmr"] == 0.25 and r["verify_fnmr"] == 0.5
    assert r["false_matches"] == ["2_2 -> 3 (0.9975)"]


def test_measure_reports_each_set_as_soon_as_it_is_measured() -> None:
    vectors = {"A": [[1, 0, 0, 0], [0, 1, 0, 0]], "B": [[0, 0, 1, 0], [0, 0, 0, 1]]}
    prints = [Print(s, str(f), i, Embedding(_unit([*v, 0.05 * i])[None], None), None)
              for s, fingers in vectors.items() for f, v in enumerate(fingers) for i in (1, 2)]
    meta = dataclasses.replace(read_meta(DEFAULT_WEIGHTS), embedding_dim=16)
    seen: list[str] = []
    gallery = build(prints, [], GalleryIndex(16).comparator, 0.001, meta)
    out = measure(prints, gallery, on_set=lambda name, r: seen.append(name))
    assert seen == ["A", "B"] and set(out["sets"]) == {"A", "B"}
    assert out["gallery"] == 4 and all(r["rank1"] == 1.0 for r in out["sets"].values())
    assert out["threshold"] == gallery.threshold


def test_the_benchmark_runs_end_to_end_as_served(tmp_path: Path, png_prints: list[list[bytes]]) -> None:
    """The whole benchmark on four synthetic fingers (three impressions each) with the real model, then with
    three synthetic distractors more: each finger's first impression enrolled, the others identify and verify
    as served (fast probes, LEADER where their answer is not clear)."""
    from lab.benchmarks.gallery_growth import main

    folder = tmp_path / "toy"
    folder.mkdir()
    for f, finger in enumerate(png_prints, start=1):
        for i, image in enumerate(finger, start=1):
            (folder / f"{f}_{i}.png").write_bytes(image)
    report = main([str(folder), "--distractors", "0,3", "--cache", str(tmp_path / "cache"), "--fast-probes",
                   "--fast-accept", "1.1", "--fast-reject", "0.4"])
    assert [r["distractors"] for r in report] == [0, 3] and report[1]["gallery"] == report[0]["gallery"] + 3
    assert report[0]["sets"]["toy"]["rank1"] == 1.0
    for r in report:  # a distractor may outrank a mate below the threshold, never be named above it
        toy = r["sets"]["toy"]
        assert toy["probes"] == 8 and toy["rank1"] >= 0.75 and toy["identify_named_right"] >= 0.75
        assert toy["identify_named_wrong"] == 0.0 and toy["verify_fmr"] == 0.0
