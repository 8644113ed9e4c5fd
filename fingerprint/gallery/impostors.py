"""The decision threshold, estimated from the deployment's own gallery.

A threshold measured on other sensors is wrong on a new one (model 4.0.0's card threshold, from its
training sensors, rejected 10-40 % of genuine attempts on sensors it had not seen while accepting no
impostor). Every gallery already holds the impostor distribution of its own sensor and population:
templates of different subjects. `ImpostorEstimator` scores enrolled templates against templates of
other subjects, exactly as verify scores a probe (the one scorer, gallery/impostor_pairs.py), keeps a bounded
uniform sample of those scores, and `DecisionThreshold` decides with the score that the target share of
them (TARGET_FMR, default 0.1 %) reaches. No labels are needed; enrolment keeps it current.

A pair of enrolled templates is not quite a probe against a template: on the seven real sensors measured,
probes of a few look-alike fingers reached the sample's 0.1 % tail three to six times as often as the
target (model card). The card's `impostor_tail_factor`, chosen leave-one-sensor-out
(`lab.evaluation.threshold_folds`), says by how much: the threshold is the score TARGET_FMR / factor of
the sample reaches.

Until the sample holds enough scores to estimate that tail (at least `MIN_TAIL` above the threshold),
the model card's prior decides; MATCH_THRESHOLD, when set, always does.

A gallery's sample can also run low: pairs that cross sensors or populations score lower than pairs
from one sensor, and a pooled gallery of seven sensors let 0.16-0.32 % of one sensor's impostors through
on three of them. The card carries a floor for that (`SyntheticTail`): the same estimate made on a
gallery of synthetic fingers, whose look-alike impostors score higher than any real set's measured; the
service never decides below it (source "synthetic_floor").
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog

from fingerprint.gallery.background import BUSY_SHARE, PacedTask
from fingerprint.gallery.impostor_pairs import ImpostorPairs

if TYPE_CHECKING:
    from fingerprint.gallery.index import GalleryIndex, Hit
    from fingerprint.model.weights import ModelMeta

log = structlog.get_logger("fingerprint.gallery.impostors")

MIN_TAIL = 3  # impostor scores at or above the threshold before the sample may set it
SAMPLE_CAPACITY = 20_000
PARTNERS = 16  # other-subject templates each template is scored against, once the gallery is large
# a backlog (a restarted replica's gallery) is scored in blocks of this many, every pair within a block: each
# template still meets PARTNERS others, and a block needs one cylinder build a template instead of one a score
BLOCK = PARTNERS + 1
SMALL_GALLERY = 200  # up to this many templates, each is scored against every one before it (all pairs)
_PARTNER_POOL = 10_000
# A restarted replica with a large gallery has minutes of scoring to do (a 10,000-template gallery: 20,000
# comparisons, ~65 s of one core in blocks), paced (gallery/background.py): the card's prior decides until
# the sample is large enough, so the estimate can wait.

ThresholdSource = Literal["setting", "gallery", "model_card", "synthetic_floor"]


@dataclass(frozen=True)
class ThresholdEstimate:
    value: float
    source: ThresholdSource
    target_fmr: float
    impostor_scores: int  # the sample's size
    needed: int  # scores the sample needs before it sets the threshold
    sample_share: float  # of the sample's scores that may reach it: target_fmr / the card's impostor tail factor
    floor: float | None  # the card's synthetic floor at sample_share; None: the card has none that deep


def tail_threshold(ranked: Sequence[float], size: int, share: float) -> float | None:
    """The lowest score that at most `share` of a sample of `size` scores reaches, from its highest scores
    `ranked` (highest first); None while the sample is too small for that tail, or deeper than `ranked` goes."""
    allowed = math.floor(share * size)  # impostors that may reach the threshold
    if size < ImpostorSample.needed(share) or allowed >= len(ranked):
        return None
    return min(1.0, ranked[allowed] + 1e-6)


@dataclass(frozen=True)
class SyntheticTail:
    """The card's synthetic impostor sample (lab/evaluation/synthetic_impostors.py): its size and its
    highest scores, enough to read its tail for any share up to len(top) / scores."""

    scores: int
    top: tuple[float, ...]  # highest first

    def threshold(self, share: float) -> float | None:
        """As `ImpostorSample.threshold` on the whole sample; None beyond what the card kept."""
        return tail_threshold(self.top, self.scores, share)

    @classmethod
    def of_card(cls, meta: ModelMeta) -> SyntheticTail | None:
        return cls(meta.synthetic_impostor_scores, meta.synthetic_impostor_top) if meta.synthetic_impostor_top else None


class ImpostorSample:
    """A uniform sample (reservoir) of impostor scores, and the threshold its tail gives."""

    def __init__(self, capacity: int = SAMPLE_CAPACITY, seed: int = 0) -> None:
        self.capacity = capacity
        self.scores: list[float] = []
        self.seen = 0
        self._rng = random.Random(seed)
        # every verify and identify asks for the threshold; sorting 20,000 scores each time held the GIL for
        # ~2 ms a request. Read once per state of the sample: target -> (version when read, threshold)
        self._version = 0  # bumped once an `add` has finished: a read during one is read again afterwards
        self._read: dict[float, tuple[int, float | None]] = {}

    def add(self, scores: list[float]) -> None:
        for s in scores:
            self.seen += 1
            if len(self.scores) < self.capacity:
                self.scores.append(s)
            else:
                j = self._rng.randrange(self.seen)
                if j < self.capacity:
                    self.scores[j] = s
        self._version += 1

    @staticmethod
    def needed(target_fmr: float) -> int:
        return math.ceil(MIN_TAIL / target_fmr)

    def threshold(self, target_fmr: float) -> float | None:
        """The lowest score that at most `target_fmr` of the sample reaches; None while the sample is
        too small for that tail."""
        version = self._version
        read = self._read.get(target_fmr)
        if read is None or read[0] != version:
            read = version, tail_threshold(sorted(self.scores, reverse=True), len(self.scores), target_fmr)
            self._read[target_fmr] = read
        return read[1]


class DecisionThreshold:
    """The one owner of the score verify and identify decide with."""

    def __init__(self, target_fmr: float, prior: float, setting: float | None, sample: ImpostorSample,
                 tail_factor: float = 1.0, synthetic: SyntheticTail | None = None) -> None:
        self.target_fmr = target_fmr
        self.prior = prior  # measured on labelled probes: the target as it is
        self.setting = setting
        self.sample = sample
        self.sample_share = target_fmr / tail_factor  # of the sample's scores that may reach the threshold
        self.floor = None if synthetic is None else synthetic.threshold(self.sample_share)

    def estimate(self) -> ThresholdEstimate:
        n, needed = len(self.sample.scores), self.sample.needed(self.sample_share)

        def made(value: float, source: ThresholdSource) -> ThresholdEstimate:
            return ThresholdEstimate(value, source, self.target_fmr, n, needed, self.sample_share, self.floor)

        if self.setting is not None:
            return made(self.setting, "setting")
        value = self.sample.threshold(self.sample_share)
        if self.floor is not None and self.floor > (self.prior if value is None else value):
            return made(self.floor, "synthetic_floor")
        return made(self.prior, "model_card") if value is None else made(value, "gallery")

    @property
    def value(self) -> float:
        return self.estimate().value


def answer_is_clear(best: float, rival: float, threshold: float, margin: float, reject: float = 0.0) -> bool:
    """Whether a fast probe's answer stands (FAST_ACCEPT, `margin`): its best score at least `margin` times
    the threshold and no other subject's best (`rival`) reaching the threshold, or (FAST_REJECT, `reject`)
    below `reject` times the threshold. Between, the distilled network's minutiae disagree with LEADER's
    too often (model card). `margin` 0: every answer stands."""
    return margin == 0 or (best >= margin * threshold and rival < threshold) or best < reject * threshold


def best_and_rival(hits: Sequence[Hit]) -> tuple[float, float]:
    """An identify's best score and the best of any other subject's (0 where there is none)."""
    if not hits:
        return 0.0, 0.0
    best = max(hits, key=lambda h: h.score)
    return best.score, max((h.score for h in hits if h.subject_id != best.subject_id), default=0.0)


def card_threshold(meta: ModelMeta, target_fmr: float) -> float:
    """What the service decides with at `target_fmr` before its gallery holds an estimate: the card's prior
    for that target, or its synthetic floor where higher."""
    prior = {0.01: meta.threshold_fmr_1e2, 0.001: meta.threshold_fmr_1e3}[target_fmr]
    return DecisionThreshold(target_fmr, prior, None, ImpostorSample(), meta.impostor_tail_factor,
                             SyntheticTail.of_card(meta)).value


class ImpostorEstimator(PacedTask):
    """Scores templates against other subjects' templates in the background, into the sample: what the
    gallery held at start (as much as fills the sample), then every template added, on this replica or
    by another (the index records each addition; this drains them)."""

    name = "impostor-estimator"

    def __init__(self, index: GalleryIndex, sample: ImpostorSample, interval: float = 1.0, seed: int = 0,
                 busy_share: float = BUSY_SHARE, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 pairs: ImpostorPairs | None = None) -> None:
        super().__init__(busy_share, sleep)
        self._index = index
        self._pairs = pairs or ImpostorPairs(index)
        self._sample = sample
        self._interval = interval
        self._rng = random.Random(seed)
        self._scored: list[str] = []  # templates already scored, the partners of the next ones

    async def catch_up(self) -> None:
        """Score every template added so far."""
        while fresh := self._index.drain_added():
            self._rng.shuffle(fresh)
            # a large gallery at start: enough templates to fill the sample with PARTNERS scores each, all in
            # blocks (they fill it alone); a smaller one first scores its first SMALL_GALLERY every pair
            enough = max(SMALL_GALLERY, 2 * self._sample.capacity // PARTNERS)
            todo, large = fresh[:enough], len(fresh) >= enough
            while todo:
                block = len(todo) >= BLOCK and (large or len(self._scored) >= SMALL_GALLERY)
                taken, todo = (todo[:BLOCK], todo[BLOCK:]) if block else (todo[:1], todo[1:])
                started = time.perf_counter()
                try:
                    await self.in_background(self._score_block if block else self._score, taken)
                except Exception as exc:  # an estimate that misses a few templates is still an estimate
                    log.warning("impostor scoring failed", **{"error.type": type(exc).__name__})
                await self.rest(started)

    async def run(self) -> None:
        while True:
            await self.catch_up()
            await asyncio.sleep(self._interval)

    def _partners(self) -> list[str]:
        if len(self._scored) <= SMALL_GALLERY:
            return list(self._scored)
        return self._rng.sample(self._scored, PARTNERS)

    def _score(self, taken: list[str]) -> None:
        """One template against partners already scored (all of them while the gallery is small)."""
        self._sample.add(self._pairs.score_against(taken[0], self._partners()))
        self._keep(taken)

    def _score_block(self, taken: list[str]) -> None:
        self._sample.add(self._pairs.score_among(taken))
        self._keep(taken)

    def _keep(self, taken: list[str]) -> None:
        for template_id in taken:
            if len(self._scored) < _PARTNER_POOL:
                self._scored.append(template_id)
            else:  # a bounded pool of partners, kept uniform over everything scored
                self._scored[self._rng.randrange(len(self._scored))] = template_id
