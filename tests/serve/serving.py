"""Serving test helpers: candidate step lists and a scripted PRM for fault tests
(the loopback server itself is tests/loopback.py)."""

from __future__ import annotations

import hashlib
import time

from mmprm.prm.base import PRM


def variants(problem, k: int = 3) -> list[list[str]]:
    """The reference steps and k-1 copies with one step changed."""
    ref = [s["text"] for s in problem.meta["reference_steps"]]
    out = [ref]
    for j in range(1, k):
        steps = list(ref)
        steps[j % len(ref)] = steps[j % len(ref)] + f" so the value is {j * 7}"
        out.append(steps)
    return out


class ScriptedPRM(PRM):
    """Scores from a hash of each step (deterministic, batch-blind); waits `delay` s per call;
    raises on any question containing BOOM, answers NaN for one containing NAN; records the
    questions of each call."""

    name = "scripted"

    def __init__(self, delay: float = 0.0):
        self.delay, self.calls = delay, []

    def score_many(self, items):
        self.calls.append([p.question for p, _ in items])
        time.sleep(self.delay)
        if any("BOOM" in p.question for p, _ in items):
            raise ValueError("the scripted PRM cannot score a BOOM question")
        return [[[float("nan") if "NAN" in p.question else expected(s) for s in steps] for steps in cands]
                for p, cands in items]

    def score(self, problem, candidates):
        return self.score_many([(problem, candidates)])[0]


def expected(step: str) -> float:
    return int(hashlib.sha256(step.encode()).hexdigest()[:6], 16) / 0xFFFFFF
