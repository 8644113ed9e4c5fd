"""The decision threshold the gallery estimates from its own impostor scores."""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fingerprint.gallery import impostors
from fingerprint.gallery.impostor_pairs import ImpostorPairs
from fingerprint.gallery.impostors import (
    DecisionThreshold,
    ImpostorEstimator,
    ImpostorSample,
    SyntheticTail,
    answer_is_clear,
    best_and_rival,
)
from fingerprint.gallery.index import GalleryIndex, Hit
from fingerprint.model.comparator import Comparator
from tests.gallery.test_impostor_pairs import fusing_index


def test_the_threshold_is_the_score_the_target_share_of_impostors_reaches() -> None:
    sample = ImpostorSample()
    scores = [i / 10_000 for i in range(10_000)]  # 0.0000 ... 0.9999
    sample.add(scores[:2_999])
    assert sample.threshold(0.001) is None  # 3 / 0.001 = 3,000 scores are needed for that tail
    sample.add(scores[2_999:])
    t = sample.threshold(0.001)
    assert t is not None
    reached = sum(s >= t for s in scores) / len(scores)
    assert reached <= 0.001 and sum(s >= t - 0.0002 for s in scores) / len(scores) > 0.001
    assert sample.threshold(0.01) < t  # a looser target, a lower threshold
    assert sample.threshold(0.001) == t  # read again unchanged...
    sample.add([0.99995] * 20)
    assert sample.threshold(0.001) > t  # ...until scores are added


def test_the_sample_stays_bounded_and_uniform() -> None:
    sample = ImpostorSample(capacity=1_000, seed=1)
    sample.add([0.0] * 5_000 + [1.0] * 5_000)
    assert len(sample.scores) == 1_000 and sample.seen == 10_000
    assert 0.4 < np.mean(sample.scores) < 0.6  # the late half is not favoured nor ignored


def test_a_setting_overrides_the_gallery_and_the_prior_decides_until_the_gallery_can() -> None:
    sample = ImpostorSample()
    threshold = DecisionThreshold(0.01, prior=0.7, setting=None, sample=sample)
    assert (threshold.value, threshold.estimate().source) == (0.7, "model_card")
    sample.add(list(np.linspace(0.0, 0.5, 400)))
    assert threshold.estimate().source == "gallery" and threshold.value < 0.5
    assert DecisionThreshold(0.01, 0.7, 0.9, sample).estimate().source == "setting"


def test_the_cards_tail_factor_decides_deeper_in_the_samples_tail() -> None:
    scores = [i / 10_000 for i in range(10_000)]
    sample = ImpostorSample()
    sample.add(scores)
    plain = DecisionThreshold(0.001, prior=0.7, setting=None, sample=sample)
    strict = DecisionThreshold(0.001, prior=0.7, setting=None, sample=sample, tail_factor=2.0)
    assert strict.value == sample.threshold(0.0005) and strict.value > plain.value
    assert sum(s >= strict.value for s in scores) == 5  # 0.1 % / 2 of the sample
    estimate = strict.estimate()
    assert (estimate.source, estimate.target_fmr, estimate.needed) == ("gallery", 0.001, 6_000)
    half = ImpostorSample()
    half.add(scores[:5_000])  # enough for 0.1 %, not for 0.05 %
    assert DecisionThreshold(0.001, 0.7, None, half, 2.0).estimate().source == "model_card"
    assert DecisionThreshold(0.001, 0.7, None, half).estimate().source == "gallery"


def test_the_cards_synthetic_tail_is_read_as_the_whole_sample_would_be() -> None:
    scores = [i / 10_000 for i in range(10_000)]
    whole = ImpostorSample()
    whole.add(scores)
    tail = SyntheticTail(10_000, tuple(sorted(scores, reverse=True)[:200]))  # the highest 2 %
    for share in (0.0002, 0.001, 0.01):
        assert tail.threshold(share) == whole.threshold(share)
    assert tail.threshold(0.05) is None  # deeper than the card kept: no floor there
    assert SyntheticTail(2_000, tail.top).threshold(0.0002) is None  # too few scores for that tail


def test_the_synthetic_floor_decides_where_the_gallery_or_the_prior_is_lower() -> None:
    floor = SyntheticTail(10_000, tuple(0.9 - i / 10_000 for i in range(200)))
    low, high = ImpostorSample(), ImpostorSample()
    low.add([i / 100_000 for i in range(10_000)])  # a gallery whose impostors all score below 0.1
    high.add([0.9 + i / 100_000 for i in range(10_000)])
    assert floor.threshold(0.001) == pytest.approx(0.899, abs=1e-5)  # the 11th highest of 10,000
    for sample, source in ((ImpostorSample(), "synthetic_floor"), (low, "synthetic_floor"), (high, "gallery")):
        estimate = DecisionThreshold(0.001, 0.7, None, sample, synthetic=floor).estimate()
        assert estimate.source == source and estimate.floor == floor.threshold(0.001)
        assert estimate.value == max(floor.threshold(0.001) or 0, sample.threshold(0.001) or 0)
    assert DecisionThreshold(0.001, 0.95, None, ImpostorSample(), synthetic=floor).estimate().source == "model_card"
    assert DecisionThreshold(0.001, 0.7, 0.5, low, synthetic=floor).estimate().value == 0.5  # MATCH_THRESHOLD rules
    assert DecisionThreshold(0.5, 0.7, None, low, synthetic=floor).estimate().source == "gallery"  # beyond the card


async def test_the_estimator_scores_other_subjects_only_and_follows_enrolment() -> None:
    rng = np.random.default_rng(0)
    index = GalleryIndex(8, Comparator())
    for n in range(30):  # 10 subjects, 3 templates each
        v = rng.normal(size=8).astype(np.float32)
        index.add(f"t{n}", f"s{n // 3}", None, v / np.linalg.norm(v))
    sample = ImpostorSample()
    estimator = ImpostorEstimator(index, sample)
    await estimator.catch_up()
    assert len(sample.scores) == 30 * 29 // 2 - 10 * 3  # every pair of a small gallery but same-subject ones
    index.add("late", "s99", None, np.ones(8, np.float32) / np.sqrt(8))
    await estimator.catch_up()
    assert len(sample.scores) == 435 - 30 + 30


async def test_a_large_backlog_is_scored_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impostors, "SMALL_GALLERY", 4)
    monkeypatch.setattr(impostors, "PARTNERS", 3)
    monkeypatch.setattr(impostors, "BLOCK", 4)
    index = fusing_index(14, 4)
    blocks: list[list[str]] = []
    among = ImpostorPairs.score_among

    def recorded(pairs: ImpostorPairs, template_ids: list[str]) -> list[float]:
        blocks.append(template_ids)
        return among(pairs, template_ids)

    monkeypatch.setattr(ImpostorPairs, "score_among", recorded)
    sample = ImpostorSample(capacity=1_000)
    estimator = ImpostorEstimator(index, sample, busy_share=1.0)
    await estimator.catch_up()
    # four one by one (all pairs so far), two blocks of four, then two left over against three partners each
    assert [len(b) for b in blocks] == [4, 4]
    scored = {t for b in blocks for t in b}
    assert len(scored) == 8 and len(estimator._scored) == 14
    assert 6 + 2 * 6 + 2 * 3 - 7 <= len(sample.scores) <= 6 + 2 * 6 + 2 * 3  # less the pairs of one subject
    blocks.clear()
    large = fusing_index(14, 5)
    estimator = ImpostorEstimator(large, ImpostorSample(capacity=15), busy_share=1.0)
    await estimator.catch_up()  # 2 x 15 / 3 = 10 templates fill the sample: 14 need no pass of every pair
    assert [len(b) for b in blocks] == [4, 4] and len(estimator._scored) == 10


async def test_the_estimator_yields_the_cpu_in_proportion_to_its_work() -> None:
    """A restarted replica's backlog must not take the core serving needs: after each template it pauses
    so that scoring takes at most `busy_share` of the time."""
    import time

    rng = np.random.default_rng(1)
    index = GalleryIndex(8, Comparator())
    for n in range(6):
        v = rng.normal(size=8).astype(np.float32)
        index.add(f"t{n}", f"s{n}", None, v / np.linalg.norm(v))
    pairs = ImpostorPairs(index)
    real = pairs.score_against

    def slow(template_id: str, partners: list[str]) -> list[float]:
        time.sleep(0.02)  # at least 20 ms of work per template
        return real(template_id, partners)

    pairs.score_against = slow  # type: ignore[method-assign]
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    await ImpostorEstimator(index, ImpostorSample(), busy_share=0.2, sleep=record, pairs=pairs).catch_up()
    assert len(pauses) == 6 and all(p >= 0.02 * 4 for p in pauses)  # 20 % busy: 4x the work spent waiting
    pauses.clear()
    await ImpostorEstimator(index, ImpostorSample(), busy_share=1.0, sleep=record, pairs=pairs).catch_up()
    assert pauses == []  # a benchmark with nothing else to serve runs flat out
    with pytest.raises(ValueError):
        ImpostorEstimator(index, ImpostorSample(), busy_share=0)


async def test_the_service_decides_with_its_gallerys_estimate(app_client: Callable[..., Any],
                                                             png_prints: list[list[bytes]]) -> None:
    async with app_client(target_fmr=0.5, gallery_sync_interval=0.05) as c:
        prior = (await c.get("/api/v1/models/status")).json()["threshold"]
        assert prior["source"] == "model_card" and prior["needed"] == math.ceil(3 / prior["sample_share"])
        # every print its own subject: 12 subjects, 66 impostor pairs, enough for the card's tail factor
        images = [image for finger in png_prints for image in finger]
        for n, image in enumerate(images):
            body = {"image": base64.b64encode(image).decode(), "subject_id": f"subject-{n}"}
            assert (await c.post("/api/v1/fingerprint/enroll", json=body)).status_code == 201
        pairs = len(images) * (len(images) - 1) // 2
        assert prior["needed"] <= pairs
        for _ in range(600):  # scored in the background, a quarter of the time
            threshold = (await c.get("/api/v1/models/status")).json()["threshold"]
            if threshold["impostor_scores"] == pairs:
                break
            await asyncio.sleep(0.05)
        assert threshold["source"] == "gallery" and threshold["impostor_scores"] == pairs
        assert threshold["value"] != prior["value"]
        body = {"image": base64.b64encode(png_prints[0][1]).decode(), "subject_id": "subject-0"}
        verified = (await c.post("/api/v1/fingerprint/verify", json=body)).json()
        assert verified["threshold"] == threshold["value"] or abs(verified["threshold"] - threshold["value"]) < 1e-4


def test_before_a_gallery_estimate_the_card_decides_with_its_prior_or_its_floor() -> None:
    from dataclasses import replace

    from fingerprint.gallery.impostors import card_threshold
    from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta

    meta = read_meta(DEFAULT_WEIGHTS)
    floor = SyntheticTail.of_card(meta)
    assert floor is not None and floor.threshold(0.001 / meta.impostor_tail_factor) is not None
    assert card_threshold(meta, 0.001) == max(meta.threshold_fmr_1e3, floor.threshold(0.001 / meta.impostor_tail_factor) or 0)
    assert card_threshold(meta, 0.01) >= meta.threshold_fmr_1e2
    bare = replace(meta, synthetic_impostor_scores=0, synthetic_impostor_top=())  # a card before 5.1.0
    assert (card_threshold(bare, 0.01), card_threshold(bare, 0.001)) == (meta.threshold_fmr_1e2, meta.threshold_fmr_1e3)


def test_a_fast_answer_stands_only_when_clear_of_the_threshold_and_of_rivals() -> None:
    hits = [Hit("t1", "alice", None, 0.30), Hit("t2", "alice", None, 0.25), Hit("t3", "bob", None, 0.05)]
    assert best_and_rival(hits) == (0.30, 0.05)  # alice's second template is no rival
    assert best_and_rival([]) == (0.0, 0.0)
    assert answer_is_clear(0.30, 0.05, 0.1, 1.1)
    assert not answer_is_clear(0.105, 0.05, 0.1, 1.1)  # above the threshold, not clear of it
    assert not answer_is_clear(0.30, 0.10, 0.1, 1.1)  # another subject also reaches the threshold
    assert not answer_is_clear(0.0, 0.0, 0.1, 1.1)  # nothing found: LEADER looks again
    assert answer_is_clear(0.0, 0.5, 0.1, 0.0)  # FAST_ACCEPT=0: the distilled network always decides
    # FAST_REJECT: an answer far below the threshold stands as no match, one near it is compared again
    assert answer_is_clear(0.03, 0.01, 0.1, 1.1, reject=0.5)
    assert not answer_is_clear(0.07, 0.01, 0.1, 1.1, reject=0.5)
