"""PRM training throughput with and without length bucketing.

Without bucketing a batch is a random draw of examples and is padded to its
longest; with bucketing (the default, `bucket=True`) each window of 64
batches is sorted by length before it is cut, so a batch holds similar
lengths. Both runs train the same tiny PRM on the same paths for the same
number of steps; tokens/s counts real (non-pad) tokens. The synthetic paths
mix 2- to 8-step solutions, and `--long-share` of them get a long first step
(a verbose real-world solution), which is where padding costs most.

Run by hand:  .venv/bin/python benchmarks/prm_training_throughput.py [--steps 60] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import torch

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic, reference_text
from mmprm.io import write_jsonl
from mmprm.policy.prompt import build_messages
from mmprm.policy.tiny.model import new_tiny_policy, save_policy
from mmprm.prm.train import PRMTrainConfig, train_prm
from mmprm.types import AnnotatedPath

FILLER = "Let me read the figure carefully and check every value before I compute anything. "


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=400)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--long-share", type=float, default=0.25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        problems = load_problems(generate_synthetic(args.problems, 5, d, min_steps=2, max_steps=8))
        rng = random.Random(0)
        paths = []
        for p in problems:
            steps = [s["text"] for s in p.meta["reference_steps"]]
            if rng.random() < args.long_share:
                steps[0] = FILLER * rng.randint(1, 4) + steps[0]
            path = AnnotatedPath.of(p, steps, [1.0] * len(steps))
            path.images = [str(Path(i).relative_to(d)) for i in p.images]
            paths.append(path)
        write_jsonl(d / "paths.jsonl", paths)
        corpus = [reference_text(p) for p in problems] + [FILLER] + [
            m["content"][-1]["text"] for p in problems for m in build_messages(p) if m["role"] == "user"]
        model, processor = new_tiny_policy(corpus, seed=0)
        save_policy(model, processor, d / "base")
        results = {}
        for bucket in (False, True):
            cfg = PRMTrainConfig(base=d / "base", data=d / "paths.jsonl", labels="oracle", lr=1e-3,
                                 batch_size=args.batch_size, max_steps=args.steps, bucket=bucket,
                                 log_every=args.steps)
            log = train_prm(cfg, d / f"prm-{bucket}", resume=False)
            results[bucket] = log
    print(f"{args.steps} steps at batch {args.batch_size}, {results[True]['config']['num_threads']} thread(s), "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    for bucket, log in results.items():
        print(f"bucketing {'on ' if bucket else 'off'}: {log['tokens_per_s']:8.0f} tokens/s, "
              f"{log['padding']:.1%} of the batch is padding, {log['time_s']} s")
    print(f"speed-up {results[True]['tokens_per_s'] / results[False]['tokens_per_s']:.2f}x")
    print(json.dumps({str(k): {x: v[x] for x in ('tokens_per_s', 'padding', 'time_s')} for k, v in results.items()}))


if __name__ == "__main__":
    main()
