"""The pipeline builds a probe's minutiae cylinders beside its inference, off the search thread, and only
for the requests that compare (verify, identify), not for enrollment; a fast probe whose first answer is
not settled is searched again on refined minutiae (plumbing: a fake embedder)."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import torch

from fingerprint.batching.admission import Admission
from fingerprint.batching.deadline import Deadline
from fingerprint.batching.pipeline import Extracted, InferencePipeline, PipelineLimits
from fingerprint.model.embedder import Embedding, LeaderSource, PreparedImage
from fingerprint.model.minutiae import MinutiaeMatcher, MinutiaeTemplate, Probe
from fingerprint.model.weights import DEFAULT_WEIGHTS, read_meta
from tests.batching.test_batcher import Observer

_POINTS = np.array([[100 + 9 * i, 120 + 7 * (i % 5), 0.3 * i] for i in range(12)], np.float32)
_MINUTIAE = MinutiaeTemplate(_POINTS, np.ones((25, 25), bool))


class FakeEmbedder:
    meta = read_meta(DEFAULT_WEIGHTS)
    precision = "float32"
    distinct_probe_minutiae = False

    def __init__(self) -> None:
        self.asked_as_probe: list[bool] = []
        self.torch_threads: list[int] = []  # each preprocess's intra-op thread count

    def preprocess(self, data: bytes, dpi: float | None, probe: bool = False) -> PreparedImage:
        self.asked_as_probe.append(probe)
        self.torch_threads.append(torch.get_num_threads())
        return PreparedImage(tensor=torch.zeros(2, 4, 4), quality=1.0, minutiae=_MINUTIAE)

    def embed(self, batch: list[PreparedImage]) -> list[Embedding]:
        return [Embedding(np.ones((1, 4), np.float32), None, p.minutiae) for p in batch]

    def refine(self, minutiae: MinutiaeTemplate, source: LeaderSource) -> MinutiaeTemplate:
        raise AssertionError("a probe without a LeaderSource is never refined")


_REFINED = MinutiaeTemplate(_POINTS[:8] + 3, np.ones((25, 25), bool))


class FastProbeEmbedder(FakeEmbedder):
    """Probes come with their print kept for LEADER, as the distilled network's do."""

    distinct_probe_minutiae = True

    def __init__(self) -> None:
        super().__init__()
        self.refined_on: list[str] = []

    def preprocess(self, data: bytes, dpi: float | None, probe: bool = False) -> PreparedImage:
        prepared = super().preprocess(data, dpi, probe)
        source = LeaderSource(np.zeros((64, 64), np.uint8), (0, 0)) if probe else None
        return PreparedImage(prepared.tensor, prepared.quality, prepared.minutiae, source)

    def refine(self, minutiae: MinutiaeTemplate, source: LeaderSource) -> MinutiaeTemplate:
        assert minutiae is _MINUTIAE and source.gray.shape == (64, 64)
        self.refined_on.append(threading.current_thread().name)
        self.torch_threads.append(torch.get_num_threads())
        return _REFINED


def _limits() -> PipelineLimits:
    return PipelineLimits(feature_extraction_timeout=5.0, inference_timeout=5.0, max_batch_size=4,
                          max_batch_wait_s=0.001, workers=2)


async def test_verify_and_identify_get_their_probe_built_on_an_extraction_thread() -> None:
    matcher = MinutiaeMatcher(direction_offsets=(-6, 6))
    built_on: list[str] = []

    def builder(minutiae: MinutiaeTemplate) -> Probe:
        built_on.append(threading.current_thread().name)
        return matcher.probe(minutiae)

    searched_on: list[str] = []

    def search(extracted: Extracted) -> Probe | MinutiaeTemplate | None:
        searched_on.append(threading.current_thread().name)
        return extracted.comparable_minutiae

    embedder = FakeEmbedder()
    pipeline = InferencePipeline(embedder, Admission(4), _limits(), Observer(), builder)
    pipeline.start()
    try:
        compared = await pipeline.match(b"img", 500.0, Deadline.after(5.0), search)
        enrolled = await pipeline.extract(b"img", 500.0, Deadline.after(5.0))
    finally:
        await pipeline.stop()
    assert isinstance(compared, Probe) and compared.views == 3
    np.testing.assert_array_equal(compared.stacked.values, matcher.probe(_MINUTIAE).stacked.values)
    assert len(built_on) == 1 and built_on[0].startswith("extract")  # enrollment built none
    assert searched_on[0].startswith("search")
    assert enrolled.probe is None and enrolled.comparable_minutiae is _MINUTIAE
    # the compared print may have its minutiae found by the card's probe network; the enrolled one never
    assert embedder.asked_as_probe == [True, False]


async def test_without_a_builder_the_search_gets_the_minutiae() -> None:
    pipeline = InferencePipeline(FakeEmbedder(), Admission(4), _limits(), Observer())
    pipeline.start()
    try:
        compared = await pipeline.match(b"img", 500.0, Deadline.after(5.0), lambda e: e.comparable_minutiae)
    finally:
        await pipeline.stop()
    assert compared is _MINUTIAE


async def test_a_fast_probes_unsettled_answer_is_searched_again_on_refined_minutiae() -> None:
    matcher = MinutiaeMatcher(direction_offsets=(-6, 6))
    embedder = FastProbeEmbedder()
    pipeline = InferencePipeline(embedder, Admission(4), replace(_limits(), torch_threads=2), Observer(), matcher.probe)
    pipeline.start()
    searched: list[Extracted] = []
    answers = iter(("doubtful", "sure"))

    def search(extracted: Extracted) -> str:
        searched.append(extracted)
        return next(answers)

    try:
        answer = await pipeline.match(b"img", 500.0, Deadline.after(5.0), search, lambda a: a == "sure")
        settled = await pipeline.match(b"img", 500.0, Deadline.after(5.0), lambda e: "sure", lambda a: a == "sure")
        enrolled = await pipeline.extract(b"img", 500.0, Deadline.after(5.0))
    finally:
        await pipeline.stop()
    assert answer == "sure" and settled == "sure"
    assert len(embedder.refined_on) == 1 and embedder.refined_on[0].startswith("extract")  # the second never
    first, second = searched
    assert first.minutiae is _MINUTIAE and second.minutiae is _REFINED
    assert isinstance(second.probe, Probe)  # the refined minutiae's own cylinders, not the first ones
    np.testing.assert_array_equal(second.probe.stacked.values, matcher.probe(_REFINED).stacked.values)
    np.testing.assert_array_equal(second.views, first.views)  # the network's embedding is not computed again
    assert second.leader_source is None and enrolled.leader_source is None
    # only LEADER's passes (the refinement, the enrolment) take both cores; the fast probes' extractions one
    assert embedder.torch_threads == [1, 2, 1, 2]
