"""Why does a PRM rank the way it does? Figures for one scored run and its PRM.

For a demo's scored samples (`--scorer prm-mc` by default: the PRM on MM-PRM's
MC prefix labels) it prints:
- the within-problem AUROC under each aggregation (min, last, mean, product), and
  of each step's score alone (step 1, 2, ..., the last);
- the mean score per step index on right and on wrong solutions;
- confounds: the within-problem AUROC of the solution's length in tokens and
  of its answer (how often the answer is the most common one) as scorers;
- on the training paths: the mean MC label per step index on right and wrong
  paths, and per step index the correlation of the PRM's score with the MC
  label, with the problem's root MC (its difficulty) and with the checker's
  verdict (the oracle, for diagnosis only).

Run by hand, after `bash scripts/demo.sh`:
  .venv/bin/python benchmarks/prm_diagnosis.py --run runs/demo-default --scorer prm-mc
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from mmprm.data import load_problems
from mmprm.evaluate.report import load_solutions
from mmprm.labels import reference_verdicts
from mmprm.labels.sources import annotated_paths
from mmprm.prm.metrics import auroc, within_problem_auroc


def _within(ids, values, correct) -> float | None:
    return within_problem_auroc(ids, [[v] for v in values], correct, how="min")[0]


def scored_figures(sols) -> dict:
    ids, correct = [s.problem_id for s in sols], [bool(s.correct) for s in sols]
    out: dict = {"aggregation": {h: within_problem_auroc(ids, [s.step_scores for s in sols], correct, how=h)[0]
                                 for h in ("min", "last", "mean", "product")}}
    longest = max(len(s.steps) for s in sols)
    by_step = {}
    for k in list(range(min(longest, 4))) + [-1]:
        keep = [i for i, s in enumerate(sols) if len(s.steps) > (k if k >= 0 else 0)]
        by_step["last" if k == -1 else str(k + 1)] = _within(
            [ids[i] for i in keep], [sols[i].step_scores[k] for i in keep], [correct[i] for i in keep])
    out["single_step"] = by_step
    means = defaultdict(lambda: defaultdict(list))
    for s in sols:
        for k, v in enumerate(s.step_scores):
            means["right" if s.correct else "wrong"][k + 1].append(v)
    out["mean_score"] = {side: {k: round(float(np.mean(v)), 3) for k, v in sorted(d.items())}
                         for side, d in means.items()}
    common = {}
    for pid in set(ids):
        answers = Counter(s.answer for s in sols if s.problem_id == pid and s.answer is not None)
        common[pid] = answers
    out["confounds"] = {
        "length_tokens": _within(ids, [s.completion_tokens or sum(len(x) for x in s.steps) for s in sols], correct),
        "answer_frequency": _within(ids, [common[s.problem_id][s.answer] if s.answer else 0 for s in sols], correct),
    }
    return out


def training_figures(paths_file: Path, prm_dir: Path) -> dict:
    from mmprm.prm.score import StepPRM

    paths = annotated_paths(paths_file)
    prm = StepPRM.from_pretrained(prm_dir)
    try:
        items = [(p.problem(), [p.steps]) for p in paths]
        scores = [r[0] for r in prm.score_many(items)]
    finally:
        prm.close()
    rows = defaultdict(list)
    labels = defaultdict(lambda: defaultdict(list))
    for p, s in zip(paths, scores):
        verdicts = reference_verdicts(p.problem(), p.steps)
        root = p.meta["mc_counts"][0]
        side = "right" if p.labels[-1] == 1.0 else "wrong"
        for k, (score, label, verdict) in enumerate(zip(s, p.labels, verdicts)):
            key = "last" if k == len(p.steps) - 1 else str(k + 1)
            rows[key].append((score, label, root[0] / root[1], float(bool(verdict))))
            labels[side][key].append(label)
    corr = {}
    for key, r in rows.items():
        a = np.array(r)
        corr[key] = {name: round(float(np.corrcoef(a[:, 0], a[:, j])[0, 1]), 3)
                     for j, name in ((1, "mc_label"), (2, "root_mc"), (3, "oracle_verdict"))}
        corr[key]["step_auroc_vs_oracle"] = auroc(a[:, 0].tolist(), (a[:, 3] > 0.5).tolist())
    return {"mean_mc_label": {side: {k: round(float(np.mean(v)), 3) for k, v in d.items()}
                              for side, d in labels.items()},
            "score_correlation": corr}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/demo-default", help="a finished `mmprm demo` folder")
    ap.add_argument("--scorer", default="prm-mc", help="scored-SCORER.jsonl in the run; its PRM folder SCORER")
    ap.add_argument("--paths", help="the training paths (default: the run's annotate/paths.jsonl)")
    args = ap.parse_args()
    run = Path(args.run)
    sols = [s for s in load_solutions(run / f"scored-{args.scorer}.jsonl") if s.step_scores]
    problems = {p.id: p for p in load_problems(run / "data" / "test" / "problems.jsonl", check_images=False)}
    assert all(s.problem_id in problems for s in sols)
    result = {"scorer": args.scorer, "held_out": scored_figures(sols)}
    if (run / args.scorer / "prm_config.json").is_file():
        paths = Path(args.paths) if args.paths else run / "annotate" / "paths.jsonl"
        result["training_paths"] = training_figures(paths, run / args.scorer)
    print(json.dumps(result, indent=1))
    (run / f"diagnosis-{args.scorer}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
