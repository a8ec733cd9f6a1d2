"""`mmprm generate`: sample N graded solutions per problem.

Solutions are appended as each problem finishes, so a killed run keeps its
work; rerunning with the same settings skips the finished problems.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from mmprm.config import setting
from mmprm.grading import Grader
from mmprm.output import OutputLayout, ResumableOutput, refuse_input_as_output
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.seeds import problem_seed
from mmprm.types import Problem, Solution


@dataclass
class GenerateConfig:
    """Settings of `mmprm generate` (recipe section `generate:`)."""

    n: int = setting(16, "solutions sampled per problem")
    temperature: float = setting(0.7, "sampling temperature")
    top_p: float = setting(1.0, "nucleus sampling")
    top_k: int = setting(0, "top-k sampling (0: off)")
    max_tokens: int = setting(512, "tokens per solution")
    seed: int = setting(0, "sampling seed")
    batch_problems: int = setting(8, "problems sampled in one policy call")
    limit: int | None = setting(None, "only the first N problems of the file")

    def __post_init__(self) -> None:
        self.sampling().check()
        if self.batch_problems < 1:
            raise ValueError(f"batch_problems must be at least 1, got {self.batch_problems}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1 problem, got {self.limit}")

    def sampling(self) -> SamplingParams:
        return SamplingParams(n=self.n, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              max_tokens=self.max_tokens, seed=self.seed)


@dataclass
class GenerateSummary:
    problems: int
    skipped: int
    solutions: int
    correct: int
    completion_tokens: int
    seconds: float
    output: str
    rejected: int = 0

    def __str__(self) -> str:
        acc = self.correct / self.solutions if self.solutions else 0.0
        return (f"generated {self.solutions} solutions for {self.problems} problems "
                f"({self.skipped} already done) in {self.seconds:.1f} s; "
                f"{acc:.1%} correct; {self.completion_tokens} tokens -> {self.output}; "
                f"{self.rejected} problems rejected")


def generate_file(policy: str, data: str | Path, out: str | Path, cfg: GenerateConfig, *,
                  grader: Grader | None = None) -> GenerateSummary:
    """`mmprm generate`: the problems of `data` (bad lines set aside in
    `<out>.rejected.jsonl`), the policy built from its spec, then `generate`."""
    from mmprm.data import load_problems
    from mmprm.grading import RuleGrader
    from mmprm.io import RejectLog
    from mmprm.policy.load import load_policy

    print("generate config: " + json.dumps(asdict(cfg)), file=sys.stderr)
    refuse_input_as_output([out], [data])  # before a model is loaded
    OutputLayout.file(out).ensure_folder()
    rejects = RejectLog(out, echo=lambda m: print(m, file=sys.stderr))
    problems = load_problems(data, rejects=rejects)[: cfg.limit]
    rejects.close()
    model = load_policy(policy)
    try:
        summary = generate(problems, model, grader or RuleGrader(), out, params=cfg.sampling(),
                           batch_problems=cfg.batch_problems, inputs=[data])
    finally:
        model.close()
    summary.rejected = rejects.count
    return summary


def generate(problems: list[Problem], policy: Policy, grader: Grader, out: str | Path, *,
             params: SamplingParams, batch_problems: int = 8, inputs: Sequence[str | Path] = (),
             progress: bool = True) -> GenerateSummary:
    """Sample `params.n` solutions for each problem, grade them, append to `out`.

    `out` is a resumable output (mmprm.output): the policy, sampling and grader
    are its settings, and `inputs` (the problems file) may not be written."""
    params.check()
    if batch_problems < 1:
        raise ValueError(f"batch_problems must be at least 1, got {batch_problems}")
    start = time.time()
    settings = {"command": "generate", "policy": policy.name, "grader": grader.name, "sampling": asdict(params)}
    output = ResumableOutput(OutputLayout.file(out), settings, inputs=inputs).open(p.id for p in problems)
    todo = [p for p in problems if p.id not in output.done]
    solutions = correct = tokens = 0
    with output, tqdm(total=len(todo), desc="generate", unit="prob", disable=not progress) as bar:
        for i in range(0, len(todo), batch_problems):
            chunk = todo[i : i + batch_problems]
            results = policy.sample_batch([Request(p, seed=problem_seed(params.seed, p.id)) for p in chunk], params)
            for problem, conts in zip(chunk, results):
                graded = [Solution(problem_id=problem.id, steps=c.steps, answer=c.answer,
                                   correct=grader.is_correct(problem, c.answer), prompt_tokens=c.prompt_tokens,
                                   completion_tokens=c.completion_tokens, meta={"sample": k, "finished": c.finished})
                          for k, c in enumerate(conts)]
                output.write(problem.id, graded, solutions=len(graded))
                solutions += len(graded)
                correct += sum(bool(s.correct) for s in graded)
                tokens += sum(c.completion_tokens for c in conts)
            bar.update(len(chunk))
            bar.set_postfix(acc=f"{correct / max(1, solutions):.2f}", tok_s=f"{tokens / (time.time() - start):.0f}")
    return GenerateSummary(len(problems), len(problems) - len(todo), solutions, correct, tokens,
                           time.time() - start, str(out))
