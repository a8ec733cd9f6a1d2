"""The annotation runner's overhead over raw generation, same backend.

Raw: the policy's `sample_batch` on the same kind of requests the runner
sends (16 problems in flight, k samples each), tokens/s. Annotation:
`annotate` (OmegaPRM) over the same problems, generated tokens/s including
grading, tree bookkeeping and crash-safe writes. The ratio is annotation ÷
raw; 1.0 would mean no overhead. MC queries deeper in the tree have longer
prompts and shorter continuations than root samples, which the ratio also
reflects.

Run by hand:  .venv/bin/python benchmarks/annotation_overhead.py --policy assets/tiny-policy-weak
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate
from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.grading import RuleGrader
from mmprm.policy.base import Request, SamplingParams
from mmprm.policy.load import load_policy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", default="assets/tiny-policy-weak", help="a folder (hf backend) or any spec")
    parser.add_argument("--problems", type=int, default=48)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--inflight", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = args.policy if ":" in args.policy else f"hf:{args.policy}"
    policy = load_policy(spec, **({"batch_size": args.inflight * args.k} if spec.startswith("hf:") else {}))
    with tempfile.TemporaryDirectory() as tmp:
        problems = load_problems(generate_synthetic(args.problems, 7, tmp, split="test", families=["bars"],
                                                    max_steps=4))
        params = SamplingParams(n=args.k, temperature=1.0, max_tokens=96, seed=0)
        t, tokens = time.perf_counter(), 0
        for i in range(0, len(problems), args.inflight):
            out = policy.sample_batch([Request(p) for p in problems[i : i + args.inflight]], params)
            tokens += sum(c.completion_tokens for conts in out for c in conts)
        raw = tokens / (time.perf_counter() - t)
        cfg = AnnotateConfig(k=args.k, max_searches=4, rollout_budget=200, max_tokens=96)
        t = time.perf_counter()
        stats = annotate(problems, policy, RuleGrader(), f"{tmp}/ann", cfg, inflight=args.inflight, progress=False)
        ann = stats["generated_tokens"] / (time.perf_counter() - t)
    print(f"policy {spec}, {args.problems} problems, k={args.k}, {args.inflight} problems in flight")
    print(f"raw generation:  {raw:8.0f} tokens/s")
    print(f"annotation:      {ann:8.0f} tokens/s  ({stats['rollouts']} rollouts, {stats['labels']} labels, "
          f"skipped {stats['skipped']})")
    print(f"ratio annotation / raw: {ann / raw:.2f}")


if __name__ == "__main__":
    main()
