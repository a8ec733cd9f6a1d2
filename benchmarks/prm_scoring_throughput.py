"""PRM scoring throughput: every step in one forward pass vs one forward per step prefix.

The per-prefix scorer is what a PRM wrapper without step positions does: for
each candidate and each k, score (problem, steps[:k]) and read the last step's
score. Ours encodes each candidate once and reads every step from one forward.
Both sides run at their best and alike: the same batch size, the same length
sorting and the same image cache (`StepPRM.batches`), at the chosen batch size
and at 1. Same model, same data; the scores agree (a causal model's step k
sees only steps <= k), and the script checks that.

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
def per_prefix_scores(prm: StepPRM, items: list) -> list[list[list[float]]]:
    """The baseline at its best: every step prefix of every candidate is its own row, batched
    and image-cached exactly as the one-pass scorer is (`StepPRM.batches`), and each row's
    last step score is read."""
    rows, owners = [], []
    for i, (problem, candidates) in enumerate(items):
        for j, steps in enumerate(candidates):
            for k in range(1, len(steps) + 1):
                rows.append(prm.encode(problem, steps[:k]))
                owners.append((i, j))
    last = [0.0] * len(rows)
    for index, batch in prm.batches(rows):
        probs = torch.sigmoid(prm.model(**batch)).cpu().tolist()
        start = 0
        for r in index:
            start += len(rows[r].positions)
            last[r] = probs[start - 1]
    out = [[[] for _ in candidates] for _, candidates in items]
    for (i, j), score in zip(owners, last):
        out[i][j].append(score)
    return out


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


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
        per_prefix_scores(prm, items[:2])
        n_solutions = sum(len(c) for _, c in items)
        n_steps = sum(len(s) for _, c in items for s in c)
        results = {}
        for batch_size in sorted({args.batch_size, 1}, reverse=True):
            prm.batch_size = batch_size
            t_ours, ours = timed(prm.score_many, items)
            t_prefix, prefix = timed(per_prefix_scores, prm, items)
            diff = max(abs(a - b) for o, n in zip(ours, prefix) for so, sn in zip(o, n) for a, b in zip(so, sn))
            results[batch_size] = (t_ours, t_prefix, diff)

    print(f"{len(items)} problems x {args.candidates} candidates = {n_solutions} solutions, {n_steps} steps; "
          f"device {prm.device}, {torch.get_num_threads()} thread(s); both sides batched and image-cached alike")
    print(f"{'batch':>5} {'one pass steps/s':>17} {'per prefix steps/s':>19} {'speed-up':>9} {'max |diff|':>11}")
    for batch_size, (t_ours, t_prefix, diff) in results.items():
        print(f"{batch_size:>5} {n_steps / t_ours:>17.1f} {n_steps / t_prefix:>19.1f} {t_prefix / t_ours:>8.1f}x "
              f"{diff:>11.2e}")


if __name__ == "__main__":
    main()
