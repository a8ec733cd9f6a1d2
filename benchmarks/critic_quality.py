"""How good a trained generative critic is, on the default demo's held-out samples (300
problems x 8 solutions of the weak policy), beside the demo's discriminative PRMs.

Each critic (`name=PATH`, a folder from `mmprm critic train`) scores the samples as a PRM
(`critic:PATH`: P(correct) per step from its verdict tokens; the critique text kept in the
scored file). Reported, with 95% intervals (problems resampled):
- first-error F1, ProcessBench's metric, from the first error the critique states (no
  verdict counts as a miss), against the generator's exact first error: ground truth used
  to measure, never to train;
- the same F1 read from the scores by a threshold (`mmprm.prm.metrics.first_error_f1`), as
  for every PRM;
- within-problem AUROC (step minimum) and Best-of-8 by the minimum;
- corrections: for wrong solutions whose first error the critic found, whether its
  corrected step is right (ground truth);
- critiques that parse, and the critic's tokens per solution.
The demo's own scored files (`scored-*.jsonl` in the run) give the PRM rows.

Run by hand, after a demo and `mmprm critic train`:
  .venv/bin/python benchmarks/critic_quality.py --run runs/demo-default \
      --critic strong-sim0.2=runs/critic/strong-sim0.2 --out runs/critic-quality
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mmprm.aggregate import aggregate
from mmprm.critic.critique import parse
from mmprm.critic.model import HFCritic
from mmprm.critic.prm import CriticPRM
from mmprm.data import load_problems
from mmprm.data.synth.check import local_step_labels
from mmprm.evaluate.report import build_pools, evaluate_pools, paired_difference
from mmprm.grading import RuleGrader
from mmprm.io import load_records
from mmprm.prm.metrics import auroc, first_error_f1, processbench_metrics
from mmprm.prm.score import score_file
from mmprm.types import Solution

DRAWS = 1000


def _interval(values: list[float], seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    arr = np.asarray(values, dtype=float)
    means = [arr[rng.integers(0, len(arr), len(arr))].mean() for _ in range(DRAWS)]
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def _per_problem_auroc(sols: list[Solution]) -> dict[str, float]:
    groups: dict[str, list[Solution]] = defaultdict(list)
    for s in sols:
        groups[s.problem_id].append(s)
    out = {}
    for pid, g in groups.items():
        a = auroc([aggregate(s.step_scores, "min", bounded=True) for s in g], [bool(s.correct) for s in g])
        if a is not None:
            out[pid] = a
    return out


def _truth_first_error(problem, sol: Solution) -> int | None:
    """-1 for a right answer, the first wrong step of a wrong one, None where it cannot be placed."""
    if sol.correct:
        return -1
    return next((i for i, ok in enumerate(local_step_labels(problem, sol.steps)) if not ok), None)


def _critique_f1(problems: dict, sols: list[Solution], layout: str) -> dict:
    """ProcessBench F1 of the critiques' stated first errors, bootstrapped over problems."""
    cases: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s in sols:
        truth = _truth_first_error(problems[s.problem_id], s)
        if truth is None:
            continue
        c = parse(s.meta.get("critique", ""), len(s.steps), layout).critique
        predicted = -2 if c is None else (-1 if c.first_error is None else c.first_error)  # -2: no verdict
        cases[s.problem_id].append((predicted, truth))
    ids = sorted(cases)

    def f1(chosen: list[str]) -> dict:
        pairs = [pt for pid in chosen for pt in cases[pid]]
        return processbench_metrics([p for p, _ in pairs], [t for _, t in pairs])

    whole = f1(ids)
    rng = np.random.default_rng(0)
    draws = [f1([ids[i] for i in rng.integers(0, len(ids), len(ids))])["f1"] for _ in range(DRAWS)]
    return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in whole.items()},
            "f1_interval": [round(float(np.percentile(draws, 2.5)), 4), round(float(np.percentile(draws, 97.5)), 4)]}


def _corrections(problems: dict, sols: list[Solution], layout: str) -> dict:
    """Among wrong solutions whose first error the critic found, how often its correction is right."""
    right = total = 0
    for s in sols:
        truth = _truth_first_error(problems[s.problem_id], s)
        if truth is None or truth < 0:
            continue
        c = parse(s.meta.get("critique", ""), len(s.steps), layout).critique
        if c is None or c.first_error != truth:
            continue
        total += 1
        right += local_step_labels(problems[s.problem_id], s.steps[:truth] + [c.correction or ""])[truth]
    return {"found": total, "right": right, "share": round(right / total, 4) if total else None}


def summarise(scored: Path, problems: dict, *, layout: str | None = None) -> dict:
    sols = [s for s in load_records(scored, Solution.from_dict) if s.step_scores is not None]
    per = _per_problem_auroc(sols)
    verdicts = [local_step_labels(problems[s.problem_id], s.steps) for s in sols]
    row = {"solutions": len(sols), "within_problem_auroc": round(float(np.mean(list(per.values()))), 4),
           "within_problem_auroc_interval": _interval(list(per.values())), "problems_ranked": len(per),
           "first_error_f1_threshold": round(first_error_f1(sols, verdicts)["first_error_f1"], 4)}
    report = evaluate_pools(build_pools(sols, RuleGrader()), [8], bounded=True, bootstrap=DRAWS)
    row["bon_min@8"] = round(report["methods"]["bon_min"]["8"], 4)
    row["bon_min@8_interval"] = [round(x, 4) for x in report["intervals"]["bon_min"]["8"]]
    row["_per_problem_bon"] = report["per_problem"]["bon_min"]["8"]
    row["_ids"] = [p for p in dict.fromkeys(s.problem_id for s in sols)]
    if layout is not None:
        row["critique_first_error"] = _critique_f1(problems, sols, layout)
        row["corrections"] = _corrections(problems, sols, layout)
        row["critiques_parsed"] = round(float(np.mean(
            [parse(s.meta.get("critique", ""), len(s.steps), layout).critique is not None for s in sols])), 4)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/demo-default", help="a finished `mmprm demo` folder")
    ap.add_argument("--critic", action="append", default=[], help="NAME=PATH of a trained critic (repeatable)")
    ap.add_argument("--prm", action="append", default=["first-error-vote", "oracle", "likelihood"],
                    help="the demo's scored files to put beside them (scored-prm-NAME.jsonl or scored-NAME.jsonl)")
    ap.add_argument("--out", default="runs/critic-quality")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--critic-samples", type=int, default=1,
                    help="critiques sampled per solution and averaged (1: one greedy critique)")
    args = ap.parse_args()
    run, out = Path(args.run), Path(args.out)
    problems_path = run / "data" / "test" / "problems.jsonl"
    problems = {p.id: p for p in load_problems(problems_path, check_images=False)}
    rows = {}
    for name in args.prm:
        path = run / f"scored-prm-{name}.jsonl"
        rows[f"prm:{name}"] = summarise(path if path.exists() else run / f"scored-{name}.jsonl", problems)
    for spec in args.critic:
        name, _, path = spec.partition("=")
        critic = HFCritic(path, batch_size=args.batch_size, samples=args.critic_samples)
        scored = out / f"scored-{name}.jsonl"
        score_file(CriticPRM(critic), problems_path, run / "samples.jsonl", scored, batch_size=16)
        row = summarise(scored, problems, layout=critic.layout)
        row["critic_tokens_per_solution"] = round(float(np.mean(
            [len(critic.policy.tokenizer.encode(s.meta.get("critique", ""))) for s in load_records(
                scored, Solution.from_dict)])), 1)
        rows[f"critic:{name}"] = row
    base = rows.get("prm:first-error-vote")
    for name, row in rows.items():
        if base is not None and name != "prm:first-error-vote" and row["_ids"] == base["_ids"]:
            d = paired_difference(row["_per_problem_bon"], base["_per_problem_bon"], draws=DRAWS)
            row["bon_min@8_vs_headline"] = {"difference": round(d["difference"], 4),
                                            "interval": [round(x, 4) for x in d["interval"]], "verdict": d["verdict"]}
    for row in rows.values():
        row.pop("_per_problem_bon")
        row.pop("_ids")
    out.mkdir(parents=True, exist_ok=True)
    (out / "critic_quality.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
