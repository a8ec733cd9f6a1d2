"""`mmprm generate`: sample N graded solutions per problem.

Solutions are appended as each problem finishes, so a killed run keeps its
work; rerunning skips problems whose N solutions are already written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mmprm.grading import Grader
from mmprm.io import JsonlAppender, Rejected, read_records
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.types import Problem, Solution


@dataclass
class GenerateSummary:
    problems: int
    skipped: int
    solutions: int
    correct: int
    completion_tokens: int
    seconds: float
    output: str

    def __str__(self) -> str:
        acc = self.correct / self.solutions if self.solutions else 0.0
        return (f"generated {self.solutions} solutions for {self.problems} problems "
                f"({self.skipped} already done) in {self.seconds:.1f} s; "
                f"{acc:.1%} correct; {self.completion_tokens} tokens -> {self.output}")


def _done_counts(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if out.exists():
        for _, rec in read_records(out, Solution.from_dict):
            if not isinstance(rec, Rejected):
                counts[rec.problem_id] = counts.get(rec.problem_id, 0) + 1
    return counts


def generate(problems: list[Problem], policy: Policy, grader: Grader, out: str | Path, *,
             params: SamplingParams, batch_problems: int = 8, progress: bool = True) -> GenerateSummary:
    """Sample `params.n` solutions for each problem, grade them, append to `out`."""
    out = Path(out)
    start = time.time()
    done = _done_counts(out)
    # A problem with fewer than n solutions was cut off mid-write: redo it whole.
    partial = {pid for pid, c in done.items() if c < params.n}
    if partial:
        _drop_problems(out, partial)
    todo = [p for p in problems if done.get(p.id, 0) < params.n]
    solutions = correct = tokens = 0
    with JsonlAppender(out) as sink, tqdm(total=len(todo), desc="generate", unit="prob",
                                          disable=not progress) as bar:
        for i in range(0, len(todo), batch_problems):
            chunk = todo[i : i + batch_problems]
            results = policy.sample_batch([Request(p) for p in chunk], params)
            for problem, conts in zip(chunk, results):
                for k, c in enumerate(conts):
                    ok = grader.is_correct(problem, c.answer)
                    sink.write(Solution(problem_id=problem.id, steps=c.steps, answer=c.answer, correct=ok,
                                        prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                                        meta={"sample": k, "finished": c.finished}))
                    solutions += 1
                    correct += ok
                    tokens += c.completion_tokens
            bar.update(len(chunk))
            bar.set_postfix(acc=f"{correct / max(1, solutions):.2f}", tok_s=f"{tokens / (time.time() - start):.0f}")
    return GenerateSummary(len(problems), len(problems) - len(todo), solutions, correct, tokens,
                           time.time() - start, str(out))


def _drop_problems(out: Path, problem_ids: set[str]) -> None:
    from mmprm.io import write_jsonl

    keep = [rec for _, rec in read_records(out, Solution.from_dict)
            if not isinstance(rec, Rejected) and rec.problem_id not in problem_ids]
    write_jsonl(out, keep)
