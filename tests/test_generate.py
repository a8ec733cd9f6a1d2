"""The generate stage with a scripted policy: it must resume without losing
or duplicating work. (The real backends are tested in tests/policy.)"""

import json

from mmprm.generate import generate
from mmprm.grading import RuleGrader
from mmprm.policy.base import Continuation, Policy, SamplingParams
from mmprm.types import Problem


class CountingPolicy(Policy):
    """Answers problem i with the value i for every sample; counts calls."""

    def __init__(self):
        self.requests = 0

    def sample_batch(self, requests, params):
        self.requests += len(requests)
        out = []
        for r in requests:
            value = r.problem.id.split("-")[1]
            out.append([Continuation(f"<step>so {value}</step><answer>{value}</answer>", [f"so {value}"], value,
                                     True, 10, 5) for _ in range(params.n)])
        return out


def test_generate_grades_and_resumes(tmp_path):
    problems = [Problem(f"p-{i}", "q", answer=str(i if i % 2 else i + 1)) for i in range(6)]
    out = tmp_path / "samples.jsonl"
    params = SamplingParams(n=3)
    first = generate(problems[:4], CountingPolicy(), RuleGrader(), out, params=params, progress=False)
    assert (first.solutions, first.correct) == (12, 6)
    # a run cut short: the last problem's samples were only partly written, its ledger line not at all
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-2]) + "\n")
    ledger = tmp_path / "samples.done.jsonl"
    ledger.write_text("\n".join(ledger.read_text().splitlines()[:-1]) + "\n")
    policy = CountingPolicy()
    second = generate(problems, policy, RuleGrader(), out, params=params, progress=False)
    assert second.skipped == 3 and policy.requests == 3  # p-3 redone whole, p-4 and p-5 new
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    per_problem = {}
    for r in rows:
        per_problem.setdefault(r["problem_id"], []).append(r["meta"]["sample"])
    assert per_problem == {f"p-{i}": [0, 1, 2] for i in range(6)}
    assert all(r["correct"] == (int(r["problem_id"][2:]) % 2 == 1) for r in rows)
