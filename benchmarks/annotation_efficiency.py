"""OmegaPRM's binary search: first errors located per 100 rollouts, and how many are right.

One simulated policy whose steps carry one of 30 words (so samples rarely
share a step's text, as real solutions do not), L = 4, 8, 12 steps, a root MC
of about 0.7 or 0.25, wrong solutions reaching the right answer by luck with
probability 0, 0.1 or 0.25; k = 8 and MM-PRM's settings (alpha 0.5, beta 0.9,
c_puct 0.125, L = 2000 tokens, 200 searches, 1,000 rollouts a problem). Each
annotator variant runs the same problems; the truth of every step is known.

Reported per setting and variant:
- located: binary searches that ended on a first error, per 100 rollouts of the
  search (and per 100 rollouts with the label completion added, where it ran);
- accuracy: the share of located first errors that are the path's true first
  wrong step;
- over: the most rollouts a problem went past its budget.

Variants: `mm-prm rule` (MC > 0 from all k rollouts: MM-PRM's rule, the
project's behaviour before this benchmark), `curtailed` (the same question,
answered by rollouts drawn one at a time and stopped once settled),
`survival 0.5` (a sequential test of the prefix's MC between the root's MC and
half of it; the root over 32 rollouts; a prefix's wrong rollouts seed searches
only if they show 3/4 of the root's MC), the same without the unchecked
last-step blame, `survival 0.4`, and `floor 0.05` (a sequential test of the prefix's
MC between what a right prefix keeps at its depth and a floor of 0.05, error 0.005;
prefixes on track drawn up to k where the root's MC is at most 0.5; 8 more root
rollouts whenever the pool runs dry; no label completion: its labels are the MC over
the rollouts each state drew, so "with labels" equals the search figure).

Run by hand:  .venv/bin/python benchmarks/annotation_efficiency.py [--problems 200]
    [--variants "mm-prm rule,floor 0.05"] [--luck 0] [--root-mc 0.7] [--lengths 4,8]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.omegaprm import omegaprm
from mmprm.grading import RuleGrader
from mmprm.policy.base import Request, SamplingParams
from mmprm.policy.simulated import SimulatedPolicy, true_first_error
from mmprm.types import Problem

MM_PRM = AnnotateConfig(k=8, alpha=0.5, beta=0.9, c_puct=0.125, length_scale=2000, max_searches=200,
                        rollout_budget=1000)
VARIANTS = {
    "mm-prm rule": MM_PRM,
    "curtailed": replace(MM_PRM, wave=1),
    "survival 0.5": replace(MM_PRM, wave=1, decision="survival", survival=0.5, root_k=32),
    "survival 0.5, no free blame": replace(MM_PRM, wave=1, decision="survival", survival=0.5, root_k=32,
                                           blame_last_step=False),
    "survival 0.4": replace(MM_PRM, wave=1, decision="survival", survival=0.4, root_k=32),
    "floor 0.05": replace(MM_PRM, wave=1, decision="floor", floor=0.05, decision_error=0.005, fill_below=0.5,
                          refill=8, complete_labels=False),
}


def step_error(length: int, root_mc: float, luck: float) -> float:
    """The per-step slip rate that gives the root this MC: P(all right) + P(some slip) * luck."""
    clean = (root_mc - luck) / (1 - luck)
    return 1 - clean ** (1 / length)


def run(policy: SimulatedPolicy, problems: list[Problem], cfg: AnnotateConfig) -> dict:
    grader = RuleGrader()
    located = right = search_rollouts = label_rollouts = over = 0
    for problem in problems:
        gen = omegaprm(problem, grader, cfg)
        try:
            query = next(gen)
            while True:
                params = SamplingParams(n=query.k, temperature=1.0, max_tokens=512)
                query = gen.send(policy.sample_batch([Request(problem, query.prefix, seed=query.seed)], params)[0])
        except StopIteration as stop:
            tree, _ = stop.value
        search_rollouts += tree.rollouts - tree.label_rollouts
        label_rollouts += tree.label_rollouts
        over = max(over, tree.rollouts - tree.label_rollouts - cfg.rollout_budget)
        for found in tree.first_errors:
            located += 1
            right += found["first_error_step"] == true_first_error(found["steps"])
    return {"located_per_100": round(100 * located / max(1, search_rollouts), 2),
            "located_per_100_with_labels": round(100 * located / max(1, search_rollouts + label_rollouts), 2),
            "accuracy": round(right / max(1, located), 3), "located": located,
            "search_rollouts": search_rollouts, "label_rollouts": label_rollouts, "over_budget_max": over}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--words", type=int, default=30)
    ap.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    ap.add_argument("--luck", default="0,0.1,0.25", help="comma-separated luck values")
    ap.add_argument("--root-mc", default="0.7,0.25", help="comma-separated root MC values")
    ap.add_argument("--lengths", default="4,8,12", help="comma-separated solution lengths")
    args = ap.parse_args()
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    results = []
    start = time.time()
    for luck in [float(x) for x in args.luck.split(",")]:
        for root_mc in [float(x) for x in args.root_mc.split(",")]:
            if root_mc <= luck:
                continue
            for length in [int(x) for x in args.lengths.split(",")]:
                policy = SimulatedPolicy(steps=length, error=step_error(length, root_mc, luck), lucky=luck,
                                         words=args.words)
                problems = [Problem(f"q{i}", "What is it?", "42", meta={"n_steps": length})
                            for i in range(args.problems)]
                row = {"luck": luck, "root_mc": root_mc, "L": length}
                for name in chosen:
                    row[name] = run(policy, problems, VARIANTS[name])
                base = row["mm-prm rule"]["located_per_100"] if "mm-prm rule" in row else None
                for name in chosen:
                    row[name]["gain"] = round(row[name]["located_per_100"] / base, 2) if base else None
                results.append(row)
                print(json.dumps(row), flush=True)
    print(json.dumps({"seconds": round(time.time() - start, 1), "problems": args.problems, "k": MM_PRM.k,
                      "budget": MM_PRM.rollout_budget}))


if __name__ == "__main__":
    main()
