"""What the hf backend's prefix cache buys, against no cache, in the same run.

Beam search (the demo's settings: N = 8, width 2, depth 6, 32 tokens a step) with the
weak tiny policy and the strong policy's likelihood as the PRM, on synthetic bar-total
problems; and the annotation of `benchmarks/annotation_overhead.py` has its own row.
A beam search continues each problem's partial solutions step by step, so every
expansion re-sends the problem's prompt, image included: what the cache keeps.
Each row is the best of `--repeats` interleaved runs; outputs are checked equal.

Run by hand:  .venv/bin/python benchmarks/prefix_cache.py [--problems 48] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.policy.hf import HFPolicy
from mmprm.prm.likelihood import LikelihoodPRM
from mmprm.search.tree_search import SearchConfig, step_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = SearchConfig(method="beam", n=8, width=2, max_depth=6, max_step_tokens=32, temperature=1.0, seed=0)
    policies = {"prefix cache (default)": HFPolicy("assets/tiny-policy-weak", batch_size=64),
                "no prefix cache": HFPolicy("assets/tiny-policy-weak", batch_size=64, prefix_cache=0)}
    prm = LikelihoodPRM.from_path("assets/tiny-policy-strong")
    with tempfile.TemporaryDirectory() as tmp:
        problems = load_problems(generate_synthetic(args.problems, 2000, tmp, split="test", families=["bartotal"],
                                                    min_steps=3, max_steps=3))
        best: dict[str, float] = {}
        outputs: dict[str, list] = {}
        for _ in range(args.repeats):
            for name, policy in policies.items():
                start = time.perf_counter()
                results = step_search(problems, policy, prm, cfg)
                seconds = time.perf_counter() - start
                best[name] = min(best.get(name, seconds), seconds)
                outputs[name] = [[c.steps for c in r.candidates] for r in results]
    same = outputs["prefix cache (default)"] == outputs["no prefix cache"]
    base = best["no prefix cache"]
    print(f"beam search, {args.problems} problems, best of {args.repeats}; outputs equal: {same}")
    for name, seconds in best.items():
        print(f"{name:24} {seconds:7.2f} s   {base / seconds:5.2f}x")


if __name__ == "__main__":
    main()
