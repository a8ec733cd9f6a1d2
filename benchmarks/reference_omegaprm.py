"""The project's OmegaPRM against MM-PRM's own `omegaprm.py`, side by side.

The simulated policy and settings of benchmarks/annotation_efficiency.py (steps of
distinct words, L = 4, 8, 12, root MC about 0.7 and 0.25, luck 0 / 0.1 / 0.25, k = 8,
MM-PRM's alpha, beta, c_puct, 200 searches, 1,000 rollouts a problem); the same problems
for every annotator. Per setting: first errors located per 100 rollouts and the share
that are the path's true first wrong step, for the reference and the project's variants,
and each variant's ratio to the reference.

The reference is MM-PRM's code, not this project's: pass its file.

    .venv/bin/python benchmarks/reference_omegaprm.py \
        --reference PATH/TO/MM-PRM/data_pipeline/omegaprm.py [--problems 200]

It runs unchanged; only what it talks to is ours:
- its policy (`LLM.generate_results`) is the simulated policy, continuing the steps
  between <step> tags after "Previous Steps:" in its prompt; a rollout's last step carries
  the answer, as the reference expects (it checks `rollout[-1]`);
- its answer check (`check_correctness`, an LLM judge behind an OpenAI client) is the
  exact comparison with the known answer, and its thread pool a serial map;
- the `openai` package it imports is stubbed when absent: its client is never called.
A first error it located is the step after the state a binary search ended on.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
import sys
import time
import types
from pathlib import Path

from annotation_efficiency import VARIANTS, run, step_error
from mmprm.policy.base import Request, SamplingParams
from mmprm.policy.simulated import SimulatedPolicy, true_first_error
from mmprm.types import Problem

ANSWER = " | answer "
PROJECT = {name: VARIANTS[name] for name in ("mm-prm rule", "curtailed", "survival 0.5", "floor 0.05")}


def load_reference(path: Path):
    """Imports the reference module from its file, with a stand-in `openai` if none is installed."""
    try:
        import openai  # noqa: F401
    except ImportError:
        stub = types.ModuleType("openai")
        stub.OpenAI = lambda **_: None
        logs = types.SimpleNamespace(logger=logging.getLogger("openai"), httpx_logger=logging.getLogger("httpx"))
        stub._utils = types.SimpleNamespace(_logs=logs)
        sys.modules["openai"] = stub
    spec = importlib.util.spec_from_file_location("mm_prm_omegaprm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SimulatedLLM:
    """The reference's `LLM`: rollouts of the simulated policy from the prompt's previous steps."""

    def __init__(self, policy: SimulatedPolicy, problem: Problem):
        self.policy, self.problem, self.calls = policy, problem, 0

    def generate_results(self, prompt: str, image_path, n: int) -> list[list[str]]:
        previous = prompt.split("Previous Steps:", 1)[1] if "Previous Steps:" in prompt else ""
        prefix = re.findall(r"<step>(.*?)</step>", previous)
        self.calls += 1  # every call draws fresh rollouts
        params = SamplingParams(n=n, temperature=1.0, max_tokens=512)
        rollouts = self.policy.sample_batch([Request(self.problem, prefix, seed=self.calls)], params)[0]
        return [c.steps[:-1] + [c.steps[-1] + ANSWER + c.answer] for c in rollouts]


def reference_class(module):
    class Instrumented(module.OmegaPRM):
        """The reference, recording where each binary search ends."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.executor.shutdown()
            self.executor = types.SimpleNamespace(map=map)
            self.located: list[tuple[list[str], int]] = []

        def binary_search_phase(self, state, rollout, left, right, length):
            if left > right and left < length:  # the search ends: state's prefix is right, the next step wrong
                prefix = list(state.get_solution_prefix())
                self.located.append((prefix + list(rollout[left:]), len(prefix)))
            super().binary_search_phase(state, rollout, left, right, length)

        def check_correctness(self, question, correct_answer, solution):
            return solution.rpartition(ANSWER)[2] == correct_answer

    return Instrumented


def run_reference(cls, policy: SimulatedPolicy, problems: list[Problem], budget: int, searches: int) -> dict:
    located = right = rollouts = over = 0
    for problem in problems:
        annotator = cls(SimulatedLLM(policy, problem), problem.question, None, problem.answer, c_puct=0.125,
                        alpha=0.5, beta=0.9, length_scale=2000, num_rollouts=8, max_search_count=searches,
                        rollout_budget=budget, api_endpoint="http://unused")
        annotator.run()
        rollouts += annotator.total_rollouts
        over = max(over, annotator.total_rollouts - budget)
        for steps, step in annotator.located:
            located += 1
            right += true_first_error([s.split(ANSWER)[0] for s in steps]) == step
    return {"located_per_100": round(100 * located / max(1, rollouts), 2),
            "accuracy": round(right / max(1, located), 3), "located": located, "rollouts": rollouts,
            "over_budget_max": over}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, type=Path, help="MM-PRM's data_pipeline/omegaprm.py")
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--luck", default="0,0.1,0.25")
    args = ap.parse_args()
    cls = reference_class(load_reference(args.reference))
    start = time.time()
    for luck in [float(x) for x in args.luck.split(",")]:
        for root_mc in (0.7, 0.25):
            if root_mc <= luck:
                continue
            for length in (4, 8, 12):
                policy = SimulatedPolicy(steps=length, error=step_error(length, root_mc, luck), lucky=luck, words=30)
                problems = [Problem(f"q{i}", "What is it?", "42", meta={"n_steps": length})
                            for i in range(args.problems)]
                row = {"luck": luck, "root_mc": root_mc, "L": length}
                base = PROJECT["mm-prm rule"]
                row["reference"] = run_reference(cls, policy, problems, base.rollout_budget, base.max_searches)
                for name, cfg in PROJECT.items():
                    row[name] = run(policy, problems, cfg)
                    ref = row["reference"]["located_per_100"]
                    row[name]["vs_reference"] = round(row[name]["located_per_100"] / ref, 2) if ref else None
                    row[name]["vs_reference_with_labels"] = \
                        round(row[name]["located_per_100_with_labels"] / ref, 2) if ref else None
                print(json.dumps(row), flush=True)
    print(json.dumps({"seconds": round(time.time() - start, 1), "problems": args.problems}))


if __name__ == "__main__":
    main()
