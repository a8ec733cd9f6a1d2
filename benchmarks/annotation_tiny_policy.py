"""The binary search's decisions on the tiny policy's own trees.

The default demo's annotation settings (the weak tiny policy through the hf
backend, bar-total problems of 3 steps, k = 8, 6 searches, 120 rollouts a
problem, 96 tokens) on the same synthetic training problems, once per
variant of the search's question (benchmarks/annotation_efficiency.py has
the simulated side). Each located first error is checked against the
synthetic generator's verdicts, an oracle no user has: the located step must
be the first step the checker calls wrong. Reported per variant: located
first errors per 100 rollouts of the search (and with the label completion),
their accuracy, and the wall time, all in one run.

Run by hand:  .venv/bin/python benchmarks/annotation_tiny_policy.py [--problems 100]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate
from mmprm.annotate.tree import Tree
from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.grading import RuleGrader
from mmprm.labels import reference_verdicts
from mmprm.policy.hf import HFPolicy

ROOT = Path(__file__).resolve().parents[1]
DEMO = AnnotateConfig(k=8, max_searches=6, rollout_budget=120, max_tokens=96, paths="rollouts")
VARIANTS = {
    "mm-prm rule (the demo's)": DEMO,
    "curtailed": replace(DEMO, wave=1),
    "survival 0.5": replace(DEMO, wave=1, decision="survival", root_k=32),
    "floor 0.05": replace(DEMO, wave=1, decision="floor", floor=0.05, decision_error=0.005, fill_below=0.5,
                          refill=8, complete_labels=False),
}


def true_first_error(verdicts: list[bool | None]) -> int | None | str:
    """The first step the checker calls wrong; "unknown" if an undecided step comes first."""
    for i, v in enumerate(verdicts):
        if v is None:
            return "unknown"
        if not v:
            return i
    return None


def measure(out: Path, problems) -> dict:
    by_id = {p.id: p for p in problems}
    located = right = unknown = search = labels = 0
    for tree_file in sorted((out / "trees").glob("*.json")):
        tree = Tree.from_dict(json.loads(tree_file.read_text()))
        search += tree.rollouts - tree.label_rollouts
        labels += tree.label_rollouts
        problem = by_id[tree.problem_id]
        for found in tree.first_errors:
            truth = true_first_error(reference_verdicts(problem, found["steps"]))
            if truth == "unknown":
                unknown += 1
                continue
            located += 1
            right += found["first_error_step"] == truth
    return {"located": located, "unchecked": unknown, "accuracy": round(right / max(1, located), 3),
            "located_per_100": round(100 * located / max(1, search), 2),
            "located_per_100_with_labels": round(100 * located / max(1, search + labels), 2),
            "search_rollouts": search, "label_rollouts": labels}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--policy", default=str(ROOT / "assets" / "tiny-policy-weak"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_synthetic(args.problems, 1000, tmp / "train", families=["bartotal"], min_steps=3, max_steps=3)
        problems = load_problems(tmp / "train" / "problems.jsonl")
        policy = HFPolicy(args.policy)
        results = {}
        for name, cfg in VARIANTS.items():
            start = time.time()
            stats = annotate(problems, policy, RuleGrader(), tmp / name.split()[0], cfg, progress=False)
            results[name] = {**measure(tmp / name.split()[0], problems), "annotated": stats["annotated"],
                             "seconds": round(time.time() - start, 1)}
            print(json.dumps({name: results[name]}), flush=True)
        policy.close()


if __name__ == "__main__":
    main()
