"""GM-PRM's filter on the tiny policy's own annotation: how many teacher critiques it keeps,
and how right the kept ones are.

The teacher is the simulated one (the synthetic ground truth with seeded noise: a
stand-in for GPT-4o, reported as one) at noise 0, 0.2 and 0.4. Each annotated rollout
path gets a critique; the filter keeps those whose first error agrees with the
path's MC values (`min_rollouts` trusted). Against the generator's ground truth
(evaluation only): the share of critiques whose first error is the true first wrong
step, and whose correction is right, before and after the filter.

Run by hand, after a demo:
  .venv/bin/python benchmarks/critique_filter.py --paths runs/demo-default/annotate/paths.jsonl
"""

from __future__ import annotations

import argparse
import json

from mmprm.critic.filter import filter_critiques
from mmprm.critic.teacher import SimulatedTeacher
from mmprm.data.synth import first_wrong_step, local_step_labels
from mmprm.io import load_records
from mmprm.types import AnnotatedPath


def right(path: AnnotatedPath, critique) -> tuple[bool, bool | None]:
    """(first error right, correction right — None where there is nothing to correct)."""
    problem = path.problem()
    first = first_wrong_step(problem, path.steps)
    if critique.first_error != first:
        return False, None if critique.first_error is None else False
    if first is None:
        return True, None
    fixed = path.steps[:first] + [critique.correction]
    return True, all(local_step_labels(problem, fixed))


def shares(pairs) -> dict:
    firsts = [right(p, c) for p, c in pairs]
    fixes = [f for _, f in firsts if f is not None]
    return {"n": len(firsts), "first_error_right": round(sum(a for a, _ in firsts) / max(1, len(firsts)), 3),
            "correction_right": round(sum(fixes) / max(1, len(fixes)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", default="runs/demo-default/annotate/paths.jsonl")
    ap.add_argument("--min-rollouts", type=int, nargs="+", default=[2])
    args = ap.parse_args()
    paths = [p for p in load_records(args.paths, AnnotatedPath.from_dict) if p.meta.get("objects")]
    for noise in (0.0, 0.2, 0.4):
        teacher = SimulatedTeacher(noise, seed=0)
        texts = [(p, teacher.critique(p.problem(), p.steps)) for p in paths]
        unfiltered, _ = filter_critiques(texts, filtered=False)
        for min_rollouts in args.min_rollouts:
            kept, report = filter_critiques(texts, min_rollouts=min_rollouts)
            print(json.dumps({"noise": noise, "min_rollouts": min_rollouts, **report.to_dict(),
                              "unfiltered": shares(unfiltered), "kept_critiques": shares(kept)}))


if __name__ == "__main__":
    main()
