"""PRM scoring throughput: every step in one forward pass vs one forward per step prefix.

The naive scorer is what a PRM wrapper without step positions does: for each
candidate and each k, run the model on (problem, steps[:k]) and read the last
step's score. Ours encodes each candidate once and reads every step from one
forward, batching candidates. Same model, same data; the scores agree (a
causal model's step k sees only steps <= k), and the script checks that.

Run by hand:  .venv/bin/python benchmarks/prm_scoring_throughput.py [--problems 40] [--candidates 8]
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time

import torch

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic, reference_text
from mmprm.policy.prompt import build_messages
from mmprm.policy.tiny.model import new_tiny_policy
from mmprm.prm.formats import collate
from mmprm.prm.load import load_prm
from mmprm.prm.model import build_prm
from mmprm.prm.schemes import get_scheme
from mmprm.prm.score import StepPRM


def corrupted(steps: list[str], rng: random.Random) -> list[str]:
    """A candidate with one step's final number changed."""
    out = list(steps)
    i = rng.randrange(len(out))
    m = re.search(r"(\d+)(\D*)$", out[i])
    out[i] = out[i][: m.start(1)] + str((int(m.group(1)) + rng.randint(1, 9)) % 100) + m.group(2)
    return out


@torch.inference_mode()
def naive_scores(prm: StepPRM, problem, candidates: list[list[str]]) -> list[list[float]]:
    out = []
    for steps in candidates:
        per_step = []
        for k in range(1, len(steps) + 1):
            row = prm.encode(problem, steps[:k])
            batch = collate([row], prm.processor)
            batch = {key: v.to(prm.device) for key, v in batch.items()}
            per_step.append(torch.sigmoid(prm.model(**batch))[-1].item())
        out.append(per_step)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--prm", help="a PRM spec (default: a fresh tiny Qwen2-VL PRM)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        problems = load_problems(generate_synthetic(args.problems, 7, tmp, split="test", min_steps=4, max_steps=8))
        rng = random.Random(0)
        items = []
        for p in problems:
            ref = [s["text"] for s in p.meta["reference_steps"]]
            items.append((p, [ref] + [corrupted(ref, rng) for _ in range(args.candidates - 1)]))
        if args.prm:
            prm = load_prm(args.prm, batch_size=args.batch_size)
        else:
            corpus = [reference_text(p) for p in problems] + [m["content"][-1]["text"] for p in problems
                                                               for m in build_messages(p) if m["role"] == "user"]
            model, processor = new_tiny_policy(corpus, seed=0)
            prm = StepPRM(build_prm(model, processor, get_scheme("mmprm"), "token"), processor, get_scheme("mmprm"),
                          batch_size=args.batch_size)
        prm.score_many(items[:2])  # warm-up
        naive_scores(prm, *items[0])
        n_solutions = sum(len(c) for _, c in items)
        n_steps = sum(len(s) for _, c in items for s in c)

        t = time.perf_counter()
        ours = prm.score_many(items)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        naive = [naive_scores(prm, p, c) for p, c in items]
        t_naive = time.perf_counter() - t

    diff = max(abs(a - b) for o, n in zip(ours, naive) for so, sn in zip(o, n) for a, b in zip(so, sn))
    print(f"{len(items)} problems x {args.candidates} candidates = {n_solutions} solutions, {n_steps} steps; "
          f"device {prm.device}, {torch.get_num_threads()} thread(s)")
    print(f"ours : {t_ours:7.2f} s  {n_solutions / t_ours:8.1f} solutions/s  {n_steps / t_ours:8.1f} steps/s "
          f"(one forward per {args.batch_size} candidates)")
    print(f"naive: {t_naive:7.2f} s  {n_solutions / t_naive:8.1f} solutions/s  {n_steps / t_naive:8.1f} steps/s "
          f"(one forward per step prefix)")
    print(f"speed-up {t_naive / t_ours:.1f}x; largest score difference {diff:.2e}")


if __name__ == "__main__":
    main()
