"""Micro-batching: together-arriving requests share a pass; dead work never reaches the model."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from fingerprint.batching.admission import Admission, QueueFull
from fingerprint.batching.batcher import MicroBatcher
from fingerprint.batching.deadline import Deadline, StageTimeout


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    def __call__(self, items: list[int]) -> np.ndarray:
        time.sleep(self.delay)
        self.batches.append(list(items))
        return np.array([[float(i)] for i in items])


class Observer:
    def __init__(self) -> None:
        self.dropped_reasons: list[str] = []
        self.sizes: list[int] = []

    def batch_done(self, size: int, seconds: float) -> None:
        self.sizes.append(size)

    def queue_wait(self, seconds: float) -> None:
        pass

    def dropped(self, reason: str) -> None:
        self.dropped_reasons.append(reason)


async def test_concurrent_requests_share_a_forward_pass() -> None:
    run = Recorder()
    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch_size=8, max_wait_s=0.05)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(i, Deadline.after(5), 5) for i in range(8)))
    await batcher.stop()
    assert [float(r[0]) for r in results] == list(range(8))
    assert run.batches == [list(range(8))]


async def test_batches_never_exceed_the_maximum() -> None:
    run = Recorder(delay=0.01)
    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch_size=4, max_wait_s=0.01)
    batcher.start()
    await asyncio.gather(*(batcher.submit(i, Deadline.after(5), 5) for i in range(10)))
    await batcher.stop()
    assert max(len(b) for b in run.batches) <= 4
    assert sorted(i for b in run.batches for i in b) == list(range(10))


async def test_timed_out_work_is_dropped_before_the_forward_pass() -> None:
    run = Recorder(delay=0.3)
    obs = Observer()
    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch_size=1, max_wait_s=0.0, observer=obs)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit(1, Deadline.after(5), 5))
    await asyncio.sleep(0.05)  # item 1 is now inside its 0.3 s forward pass
    with pytest.raises(StageTimeout) as err:
        await batcher.submit(2, Deadline.after(5), stage_timeout=0.1)
    assert err.value.stage == "inference_timeout"
    await first
    await batcher.stop()
    assert run.batches == [[1]]  # item 2 never cost a forward pass
    assert obs.dropped_reasons == ["deadline_inference"]


async def test_request_deadline_names_the_request_stage() -> None:
    run = Recorder(delay=0.3)
    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch_size=1, max_wait_s=0.0)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit(1, Deadline.after(5), 5))
    await asyncio.sleep(0.05)
    with pytest.raises(StageTimeout) as err:
        await batcher.submit(2, Deadline.after(0.1), stage_timeout=10)
    assert err.value.stage == "request_timeout"
    await first
    await batcher.stop()


async def test_cancelled_caller_is_skipped() -> None:
    run = Recorder(delay=0.2)
    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch_size=1, max_wait_s=0.0)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit(1, Deadline.after(5), 5))
    await asyncio.sleep(0.05)
    gone = asyncio.ensure_future(batcher.submit(2, Deadline.after(5), 5))
    await asyncio.sleep(0.01)
    gone.cancel()
    await first
    await batcher.stop()
    assert run.batches == [[1]]


async def test_stop_finishes_queued_work() -> None:
    run = Recorder(delay=0.05)
    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch_size=2, max_wait_s=0.0)
    batcher.start()
    pending = [asyncio.ensure_future(batcher.submit(i, Deadline.after(5), 5)) for i in range(5)]
    await asyncio.sleep(0)
    await batcher.stop()
    assert [float((await p)[0]) for p in pending] == [0, 1, 2, 3, 4]


def test_admission_is_bounded_and_releases() -> None:
    depth: list[int] = []
    adm = Admission(2, on_change=depth.append)
    with adm.slot(), adm.slot():
        with pytest.raises(QueueFull):
            adm.slot()
        assert adm.depth == 2
    assert adm.depth == 0
    adm.close()
    with pytest.raises(QueueFull):
        adm.slot()
    assert depth == [1, 2, 1, 0]


async def test_a_lone_item_goes_at_once_when_no_company_can_come() -> None:
    run = Recorder()
    coming = [False]
    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch_size=8, max_wait_s=60.0, expecting=lambda: coming[0])
    batcher.start()
    try:
        # with a minute's wait for company the stage timeout (5 s) would fire first: it is not waited for
        assert float((await batcher.submit(1, Deadline.after(10.0), 5.0))[0]) == 1.0
        coming[0] = True  # another print is being prepared: the next lone item waits for it
        first = asyncio.create_task(batcher.submit(2, Deadline.after(10.0), 5.0))
        await asyncio.sleep(0.05)
        assert not first.done()
        second = asyncio.create_task(batcher.submit(3, Deadline.after(10.0), 5.0))
        await asyncio.sleep(0.05)
        coming[0] = False
        await batcher.submit(4, Deadline.after(10.0), 5.0)  # wakes the batcher: nothing more is coming
        await asyncio.gather(first, second)
        assert run.batches == [[1], [2, 3, 4]]
    finally:
        await batcher.stop()
