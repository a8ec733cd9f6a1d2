"""How good are automatic step labels, and what do they cost?

With the simulated policy the true first wrong step of every solution is
known, so we can score the annotators directly:
- first-error accuracy: of the solutions an annotator marks wrong, the share
  whose first 0-labelled step is the true first wrong step;
- step-label agreement: the share of labelled steps whose hard label (MC > 0)
  matches the truth (right iff before the first wrong step);
- rollouts per label.
OmegaPRM and per-step MC, for several k (rollouts per estimate). "lucky"
solutions (a wrong step, yet the right answer) are what makes MC noisy.

Run by hand:  .venv/bin/python benchmarks/annotation_quality.py [--problems 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate
from mmprm.grading import RuleGrader
from mmprm.io import load_records
from mmprm.policy.simulated import SimulatedPolicy, true_first_error
from mmprm.types import AnnotatedPath, Problem


def score(paths: list[AnnotatedPath]) -> tuple[float, float, int]:
    hits = marked = agree = total = 0
    for p in paths:
        truth = true_first_error(p.steps)
        first_zero = next((i for i, v in enumerate(p.labels) if v == 0.0), None)
        if first_zero is not None:
            marked += 1
            hits += first_zero == truth
        for i, v in enumerate(p.labels):
            total += 1
            agree += (v > 0) == (truth is None or i < truth)
    return hits / max(1, marked), agree / max(1, total), total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--error", type=float, default=0.08)
    parser.add_argument("--lucky", default="0,0.1", help="comma-separated lucky rates, one table each")
    parser.add_argument("--ks", default="1,2,4,8,16,32")
    args = parser.parse_args()
    problems = [Problem(f"b{i}", "q", str(30 + i % 50)) for i in range(args.problems)]
    for lucky in map(float, args.lucky.split(",")):
        policy = SimulatedPolicy(steps=args.steps, error=args.error, lucky=lucky)
        print(f"\nsimulated policy: {args.steps} steps, per-step error {args.error}, lucky {lucky}, "
              f"{args.problems} problems\n")
        table(problems, policy, list(map(int, args.ks.split(","))))


def table(problems: list[Problem], policy: SimulatedPolicy, ks: list[int]) -> None:
    print("| method | k | first-error acc | step-label agreement | labels | rollouts | rollouts/label | s |")
    print("|---|---|---|---|---|---|---|---|")
    for method in ("omegaprm", "mc"):
        for k in ks:
            cfg = AnnotateConfig(method=method, k=k, max_searches=20, num_solutions=4, rollout_budget=100_000)
            with tempfile.TemporaryDirectory() as out:
                t = time.time()
                stats = annotate(problems, policy, RuleGrader(), out, cfg, progress=False)
                seconds = time.time() - t
                paths = load_records(f"{out}/paths.jsonl", AnnotatedPath.from_dict)
            acc, agreement, labels = score(paths)
            print(f"| {method} | {k} | {acc:.3f} | {agreement:.3f} | {labels} | {stats['rollouts']} | "
                  f"{stats['rollouts'] / max(1, labels):.1f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
