"""How right is each label source on the training paths, measured against the oracle?

Rebuilds a finished demo's training paths from its annotation trees, labels
every step with each oracle-free source (mmprm.labels) and compares the
labels with the synthetic checker's verdicts (the oracle, which no real user
has): the share of steps a source labels (coverage), the accuracy of its
labels read at 0.5, and the AUROC of its labels against the verdicts, overall
and by step index. `--min-rollouts` sets how many rollouts an MC estimate
needs before the MC-derived sources believe it; `--k 4 8 16` annotates part of
the demo's training problems again with k rollouts per MC estimate and
compares the labels at each k.

Run by hand, after `bash scripts/demo.sh`:
  .venv/bin/python benchmarks/label_source_quality.py --run runs/demo-default --min-rollouts 1 2 4
  .venv/bin/python benchmarks/label_source_quality.py --run runs/demo-default --k 4 8 16 --problems 200
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from mmprm.annotate.tree import Tree, training_paths
from mmprm.data import load_problems
from mmprm.labels import LABEL_SOURCES, label_paths, reference_verdicts
from mmprm.prm.metrics import auroc


def label_quality(paths, source: str, min_rollouts: int, threshold: float) -> dict:
    """Coverage, accuracy and AUROC of a source's labels against the oracle's verdicts."""
    rows = defaultdict(list)  # step index ("all" too) -> [(label, verdict)]
    total = 0
    targets = label_paths(source, paths, min_rollouts=min_rollouts, threshold=threshold)
    for path, labels in zip(paths, targets):
        verdicts = reference_verdicts(path.problem(), path.steps)
        for k, (label, verdict) in enumerate(zip(labels, verdicts)):
            total += verdict is not None
            if label is None or verdict is None:
                continue
            rows["all"].append((label, verdict))
            rows[k + 1 if k < 2 else "last" if k == len(path.steps) - 1 else "3+"].append((label, verdict))
    out = {"coverage": round(len(rows["all"]) / max(1, total), 3)}
    for key, pairs in rows.items():
        labels, verdicts = [p[0] for p in pairs], [p[1] for p in pairs]
        out[str(key)] = {"steps": len(pairs),
                         "accuracy": round(sum((x >= 0.5) == y for x, y in pairs) / len(pairs), 3),
                         "auroc": auroc(labels, verdicts)}
    return out


def paths_of(run: Path, annotation: Path, kind: str) -> list:
    problems = {p.id: p for p in load_problems(run / "data" / "train" / "problems.jsonl", check_images=False)}
    paths = []
    for tree_file in sorted((annotation / "trees").glob("*.json")):
        tree = Tree.from_dict(json.loads(tree_file.read_text()))
        paths += training_paths(tree, problems[tree.problem_id], kind)
    return paths


def annotate_at(run: Path, k: int, limit: int) -> Path:
    """The demo's first `limit` training problems annotated again with k rollouts per
    MC estimate (the demo's other settings), into run/label-quality-k{k}/."""
    from mmprm.annotate.config import AnnotateConfig
    from mmprm.annotate.runner import annotate
    from mmprm.grading import RuleGrader
    from mmprm.policy.hf import HFPolicy

    demo = json.loads((run / "demo_config.json").read_text())
    out = run / f"label-quality-k{k}"
    problems = load_problems(run / "data" / "train" / "problems.jsonl")[:limit]
    policy = HFPolicy(demo["weak_policy"], batch_size=demo["policy_batch"])
    try:
        cfg = AnnotateConfig(k=k, max_searches=demo["searches"], rollout_budget=demo["rollout_budget"] * k // 8,
                             temperature=demo["temperature"], max_tokens=96, seed=demo["seed"], paths="rollouts")
        annotate(problems, policy, RuleGrader(), out, cfg, inflight=16)
    finally:
        policy.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/demo-default", help="a finished `mmprm demo` folder")
    ap.add_argument("--paths", default="rollouts")
    ap.add_argument("--min-rollouts", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--threshold", type=float, nargs="+", default=[0.0, 0.25, 0.5],
                    help="first-error: the share of the last solvable prefix's MC a step must keep")
    ap.add_argument("--k", type=int, nargs="+",
                    help="instead of the demo's annotation: annotate its first --problems training problems "
                         "again with each k (rollouts per MC estimate; budget scaled with k) and compare")
    ap.add_argument("--problems", type=int, default=200)
    args = ap.parse_args()
    run = Path(args.run)
    if args.k:
        results = {}
        for k in args.k:
            paths = paths_of(run, annotate_at(run, k, args.problems), args.paths)
            for source in ("mc", "first-error", "first-error-vote", "survival"):
                results[f"k={k} {source}"] = q = label_quality(paths, source, 1, 0.5)
                print(f"k={k} {len(paths)} paths {source:16s}: " + json.dumps(q))
        (run / "label_quality_k.json").write_text(json.dumps(results, indent=2) + "\n")
        return
    paths = paths_of(run, run / "annotate", args.paths)
    print(f"{len(paths)} {args.paths} paths, {sum(len(p.steps) for p in paths)} steps")
    results = {}
    for source, spec in LABEL_SOURCES.items():
        if spec.oracle or not spec.from_annotation:
            continue
        for m in args.min_rollouts if source != "mc" else [1]:
            for t in args.threshold if source.startswith("first-error") else [0.5]:
                results[f"{source} (min {m}, threshold {t:g})"] = q = label_quality(paths, source, m, t)
                print(f"{source:12s} min_rollouts={m} threshold={t:g}: " + json.dumps(q))
    (run / "label_quality.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
