"""Which training paths, label source and settings make a PRM rank its policy's samples?

Rebuilds training paths from a finished demo's annotation trees (MM-PRM's
traversal, every sampled solution: rollout paths, or both), trains one PRM from
the demo's strong checkpoint on the named label source (mmprm.labels), scores
the demo's held-out samples and prints the within-problem AUROC (what
selection needs), the pooled step AUROC and first-error F1 against the
synthetic checker, and Best-of-N / weighted vote at every N. The tables in
docs/results.md were made with it.

Run by hand, after `bash scripts/demo.sh`:
  .venv/bin/python benchmarks/prm_training_ablation.py --run runs/demo-default \\
      --paths rollouts --labels first-error --steps 1000 --lr 2e-3 --seed 0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mmprm.annotate.config import PATH_KINDS
from mmprm.annotate.tree import Tree, training_paths
from mmprm.data import load_problems
from mmprm.evaluate.report import build_pools, evaluate_pools, load_solutions
from mmprm.grading import RuleGrader
from mmprm.io import rehome_images, write_jsonl
from mmprm.labels import LABEL_SOURCES, reference_verdicts
from mmprm.prm.metrics import scored_summary
from mmprm.prm.score import StepPRM, score_file
from mmprm.prm.train import PRMTrainConfig, train_prm


def rebuild_paths(run: Path, kind: str, out: Path, *, perfect_counts: bool = False) -> int:
    """The training paths of `kind` from run/annotate/trees, written to out/paths.jsonl.
    `perfect_counts` (a diagnosis that reads the oracle) replaces every MC count by
    [1, 1] where the checker finds the prefix right and [0, 1] where not: what the
    MC-derived sources would give with flawless estimates and no lucky answers."""
    problems = {p.id: p for p in load_problems(run / "data" / "train" / "problems.jsonl")}
    paths = []
    for tree_file in sorted((run / "annotate" / "trees").glob("*.json")):
        tree = Tree.from_dict(json.loads(tree_file.read_text()))
        problem = problems[tree.problem_id]
        built = training_paths(tree, problem, kind)
        for p in built:
            p.images = rehome_images(p.images, out, out / "images", problem.id)
            if perfect_counts:
                right = [1] + [int(all(v is not False for v in reference_verdicts(problem, p.steps[: k + 1])))
                               for k in range(len(p.steps))]
                p.meta["mc_counts"] = [[r, 1] for r in right]
        paths += built
    write_jsonl(out / "paths.jsonl", paths)
    return len(paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/demo-default", help="a finished `mmprm demo` folder")
    ap.add_argument("--paths", choices=PATH_KINDS, default="rollouts")
    ap.add_argument("--labels", choices=list(LABEL_SOURCES), default="first-error")
    ap.add_argument("--min-rollouts", type=int, default=1)
    ap.add_argument("--threshold", type=float, default=0.5, help="first-error: share of MC a step must keep")
    ap.add_argument("--loss", choices=["soft", "hard"], default="soft", help="hard: target > 0")
    ap.add_argument("--perfect-counts", action="store_true",
                    help="diagnosis (reads the oracle): MC counts as flawless estimates would give them")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--head", choices=["token", "value"], default="token")
    ap.add_argument("--lora", action="store_true", help="train LoRA adapters (rank 16) instead of the whole LM")
    ap.add_argument("--answer-negatives", type=int, default=0,
                    help="per right path, copies with the final result changed (mmprm.labels.negatives)")
    ap.add_argument("--label-filter", type=float, default=0.0, metavar="SHARE",
                    help="mask this share of the labels the strong checkpoint's likelihood disagrees with most "
                         "(mmprm.labels.agreement)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run)
    base = json.loads((run / "demo_config.json").read_text())["strong_policy"]
    out = run / "ablation" / (f"{args.paths}-{args.labels}-m{args.min_rollouts}-t{args.threshold:g}-{args.loss}"
                              f"-{args.steps}x{args.lr:g}"
                              f"-seed{args.seed}" + ("-perfect" if args.perfect_counts else "")
                              + ("" if args.head == "token" else f"-{args.head}")
                              + (f"-wd{args.weight_decay:g}" if args.weight_decay else "")
                              + ("-lora" if args.lora else "")
                              + (f"-neg{args.answer_negatives}" if args.answer_negatives else "")
                              + (f"-agree{args.label_filter:g}" if args.label_filter else ""))
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    n = rebuild_paths(run, args.paths, out, perfect_counts=args.perfect_counts)
    cfg = PRMTrainConfig(base=base, data=out / "paths.jsonl", labels=args.labels, loss=args.loss, lr=args.lr,
                         min_rollouts=args.min_rollouts, first_error_threshold=args.threshold,
                         batch_size=args.batch, max_steps=args.steps, seed=args.seed, warmup_ratio=0.05,
                         weight_decay=args.weight_decay, head=args.head, lora=args.lora,
                         answer_negatives=args.answer_negatives, label_filter=base if args.label_filter else None,
                         label_filter_share=args.label_filter or 0.1)
    log = train_prm(cfg, out / "prm")
    prm = StepPRM.from_pretrained(out / "prm")
    try:
        score_file(prm, run / "data" / "test" / "problems.jsonl", run / "samples.jsonl", out / "scored.jsonl")
    finally:
        prm.close()
    summary = scored_summary(out / "scored.jsonl", run / "data" / "test" / "problems.jsonl")
    pools = build_pools(load_solutions(out / "scored.jsonl"), RuleGrader())
    selection = evaluate_pools(pools, [1, 2, 4, 8], bootstrap=200)["methods"]
    keep = ("bon_min", "bon_last", "bon_product", "weighted_min", "weighted_product")
    result = {**vars(args), "training_paths": n, "final_loss": log.get("final_loss"), **summary,
              "selection": {m: selection[m] for m in keep if m in selection},
              "seconds": round(time.time() - start)}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
