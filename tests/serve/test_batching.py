"""The batcher alone, on an event loop: batch limits, the request held for the next
batch, wrong answers from the PRM, and stopping with requests still waiting."""

from __future__ import annotations

import asyncio
import time

import pytest

from mmprm.serve.batching import DynamicBatcher, ScoringFailed
from mmprm.types import Problem


def job(question: str, candidates: int = 1):
    return [(Problem(question, question, "0"), [[f"{question} step"]] * candidates)]


class Recorder:
    def __init__(self, delay: float = 0.0, answer=None):
        self.calls, self.delay, self.answer = [], delay, answer

    def __call__(self, items):
        self.calls.append([p.id for p, _ in items])
        time.sleep(self.delay)
        if self.answer is not None:
            return self.answer(items)
        return [[[float(len(p.id))] * len(s) for s in cands] for p, cands in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_a_request_past_the_batch_limit_waits_for_the_next_batch_and_every_one_gets_its_own_scores():
    prm = Recorder(delay=0.05)

    async def main():
        batcher = DynamicBatcher(prm, max_batch_candidates=4, max_wait_s=0.2)
        batcher.start()
        results = await asyncio.gather(batcher.score(job("a", 3)), batcher.score(job("bb", 1)),
                                       batcher.score(job("ccc", 2)), batcher.score(job("dddd", 2)))
        await batcher.stop()
        return results, batcher.stats

    results, stats = run(main())
    assert prm.calls == [["a", "bb"], ["ccc", "dddd"]]  # 3 + 1 fill the first batch; ccc waited (held) for the next
    assert [r[0][0][0] for r in results] == [1.0, 2.0, 3.0, 4.0]
    assert [len(r[0]) for r in results] == [3, 1, 2, 2]
    assert (stats.accepted, stats.answered, stats.batches) == (4, 4, 2)


@pytest.mark.parametrize("answer, reason", [
    (lambda items: None, "NoneType"),
    (lambda items: [[[0.5]]] * (len(items) - 1), "for 2 items"),
    (lambda items: [[[0.5, 0.5]] for _ in items], "do not match the steps"),
    (lambda items: [[[float("inf")]] for _ in items], "not a finite number"),
])
def test_a_wrong_answer_from_the_prm_fails_its_requests_and_the_worker_goes_on(answer, reason):
    prm = Recorder(answer=answer)

    async def main():
        batcher = DynamicBatcher(prm, max_wait_s=0.05)
        batcher.start()
        outcomes = await asyncio.gather(batcher.score(job("a")), batcher.score(job("b")), return_exceptions=True)
        prm.answer = None
        after = await batcher.score(job("c"))
        await batcher.stop()
        return outcomes, after, batcher.stats

    outcomes, after, stats = run(main())
    assert all(isinstance(o, ScoringFailed) for o in outcomes)
    assert after == [[[1.0]]]
    assert (stats.failed, stats.answered) == (2, 1)


def test_stopping_fails_the_batch_in_the_model_and_the_queue_and_refuses_more():
    prm = Recorder(delay=0.5)

    async def main():
        batcher = DynamicBatcher(prm, max_batch_candidates=1, max_wait_s=0)
        batcher.start()
        tasks = [asyncio.ensure_future(batcher.score(job(q))) for q in ("a", "b", "c")]
        await asyncio.sleep(0.1)  # "a" is in the model, "b" and "c" wait
        await batcher.stop()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        with pytest.raises(ScoringFailed, match="not running"):
            await batcher.score(job("d"))
        return outcomes, batcher.stats.to_dict()

    outcomes, stats = run(main())
    assert all(isinstance(o, ScoringFailed) and "shutting down" in str(o) for o in outcomes)
    assert stats["in_flight"] == 0 and stats["failed"] == 3
