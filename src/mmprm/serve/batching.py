"""Dynamic batching: requests that arrive together are scored together.

A PRM's throughput is in the batch (one forward pass scores every step of
many candidates), but a client sends a few candidates at a time. The batcher
queues each request's items; one worker takes the oldest request, waits at
most `max_wait_s` for others to arrive, and scores all of them, up to
`max_batch_candidates`, in one `score_many` call in a worker thread (the
model is used by one thread at a time). If that call fails, each request in
it is scored alone, so one bad request fails alone and the rest are answered.
Every accepted request ends in exactly one of: answered, failed, or
abandoned (its client left); `stats` counts them so tests can check that
none is lost.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mmprm.types import Problem

Items = list[tuple[Problem, list[list[str]]]]
Scores = list[list[list[float]]]


@dataclass
class _Job:
    items: Items
    candidates: int
    future: asyncio.Future


@dataclass
class BatchStats:
    accepted: int = 0
    answered: int = 0
    failed: int = 0
    abandoned: int = 0
    batches: int = 0
    batch_sizes: list[int] = field(default_factory=list, repr=False)  # requests per model call, the last 1000

    def to_dict(self) -> dict:
        sizes = self.batch_sizes
        return {"accepted": self.accepted, "answered": self.answered, "failed": self.failed,
                "abandoned": self.abandoned, "in_flight": self.accepted - self.answered - self.failed - self.abandoned,
                "batches": self.batches, "mean_requests_per_batch": round(sum(sizes) / len(sizes), 2) if sizes else 0}


class ScoringFailed(RuntimeError):
    """The PRM raised on this request; the message is its reason."""


class DynamicBatcher:
    """Scores requests through `score_many`, batching those that arrive together.

    With `enabled=False` every request is scored alone, in arrival order: the
    baseline of the load benchmark.
    """

    def __init__(self, score_many: Callable[[Items], Scores], *, max_batch_candidates: int = 64,
                 max_wait_s: float = 0.002, enabled: bool = True):
        if max_batch_candidates < 1:
            raise ValueError(f"max_batch_candidates must be at least 1, got {max_batch_candidates}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be at least 0, got {max_wait_s}")
        self.score_many = score_many
        self.max_batch_candidates, self.max_wait_s, self.enabled = max_batch_candidates, max_wait_s, enabled
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._held: _Job | None = None  # taken from the queue but past the batch limit: first in the next batch
        self._current: list[_Job] = []  # the batch being collected or scored
        self._closed = False

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="prm batcher")

    async def stop(self) -> None:
        """Stop the worker; requests not yet answered fail (the server is going away), none is left waiting."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        pending = [*self._current, *([self._held] if self._held else [])]
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            self._settle(job, error=ScoringFailed("the server is shutting down"))

    async def score(self, items: Items) -> Scores:
        """The scores of `items`, once the worker has scored them; raises ScoringFailed."""
        if self._queue is None or self._closed or not self.running:
            raise ScoringFailed("the server's scoring worker is not running")
        job = _Job(items, sum(len(c) for _, c in items), asyncio.get_running_loop().create_future())
        self.stats.accepted += 1
        self._queue.put_nowait(job)
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:  # the client went away: its result, when it comes, is dropped
            job.future.cancel()
            raise

    async def _run(self) -> None:
        while True:
            self._current = await self._collect()
            try:
                live = []
                for job in self._current:
                    if job.future.cancelled():
                        self.stats.abandoned += 1
                    else:
                        live.append(job)
                if live:
                    await self._score(live)
            except Exception as e:  # a bug here must not strand the batch, nor stop the worker
                for job in self._current:
                    if not job.future.done():
                        self._settle(job, error=ScoringFailed(f"{type(e).__name__}: {e}"))
            self._current = []

    async def _collect(self) -> list[_Job]:
        """The next batch: the oldest request, then whatever arrives within `max_wait_s`."""
        first, self._held = self._held or await self._queue.get(), None
        jobs, total = [first], first.candidates
        if not self.enabled:
            return jobs
        deadline = time.monotonic() + self.max_wait_s
        while total < self.max_batch_candidates:
            left = deadline - time.monotonic()
            try:
                job = self._queue.get_nowait() if left <= 0 else await asyncio.wait_for(self._queue.get(), left)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if total + job.candidates > self.max_batch_candidates:
                self._held = job
                break
            jobs.append(job)
            total += job.candidates
        return jobs

    async def _score(self, jobs: list[_Job]) -> None:
        self.stats.batches += 1
        self.stats.batch_sizes = [*self.stats.batch_sizes[-999:], len(jobs)]
        flat = [item for job in jobs for item in job.items]
        try:
            scores = await asyncio.to_thread(self.score_many, flat)
            _check_shape(scores, flat)
        except Exception as e:  # the PRM's failure goes to the client whose request caused it
            if len(jobs) == 1:
                self._settle(jobs[0], error=ScoringFailed(f"{type(e).__name__}: {e}"))
                return
            for job in jobs:  # find the request that failed: each alone
                if job.future.done():
                    self._settle(job)
                else:
                    await self._score([job])
            return
        start = 0
        for job in jobs:
            self._settle(job, result=scores[start : start + len(job.items)])
            start += len(job.items)

    def _settle(self, job: _Job, *, result: Scores | None = None, error: Exception | None = None) -> None:
        if job.future.done():  # abandoned while the model ran
            self.stats.abandoned += 1
        elif error is not None:
            self.stats.failed += 1
            job.future.set_exception(error)
        else:
            self.stats.answered += 1
            job.future.set_result(result)


def _check_shape(scores: object, items: Items) -> None:
    """A PRM's answer must be one finite number per step: anything else is its failure,
    not something to send (NaN would reach the client as null)."""
    if not isinstance(scores, list) or len(scores) != len(items):
        raise ValueError(f"the PRM returned {type(scores).__name__} of length "
                         f"{len(scores) if isinstance(scores, list) else '?'} for {len(items)} items")
    for per_item, (_, candidates) in zip(scores, items):
        if len(per_item) != len(candidates) or any(len(s) != len(c) for s, c in zip(per_item, candidates)):
            raise ValueError("the PRM returned scores that do not match the steps")
        if not all(math.isfinite(x) for s in per_item for x in s):
            raise ValueError("the PRM returned a score that is not a finite number")
