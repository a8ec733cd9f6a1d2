"""Generation throughput of the hf backend: batched against one sequence at a time.

Run by hand (never by the test suite):

    PYTHONPATH=src python benchmarks/generation_throughput.py [--policy DIR] [--requests 32]

Without --policy it uses assets/tiny-policy-weak when present, else a freshly
initialised tiny policy. Prints tokens/s per batch size and the ratio to
batch size 1, all measured in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.policy.base import Request, SamplingParams
from mmprm.policy.hf import HFPolicy
from mmprm.policy.tiny.model import build_tiny_policy

ASSET = Path(__file__).resolve().parents[1] / "assets" / "tiny-policy-weak"


def measure(policy: HFPolicy, requests: list[Request], params: SamplingParams, batch_size: int) -> tuple[int, float]:
    """(completion tokens, seconds) for all requests at `batch_size`."""
    policy.batch_size = batch_size
    start = time.perf_counter()
    outs = policy.sample_batch(requests, params)
    return sum(c.completion_tokens for cs in outs for c in cs), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", help="checkpoint folder (default: assets/tiny-policy-weak, else a fresh tiny policy)")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--n", type=int, default=1, help="samples per request")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--batch-sizes", default="1,4,16,32")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.policy or (ASSET if ASSET.is_dir() else build_tiny_policy(Path(tmp) / "policy"))
        generate_synthetic(args.requests, 123, Path(tmp) / "data", split="test")
        problems = load_problems(Path(tmp) / "data" / "problems.jsonl")
        policy = HFPolicy(path)
        requests = [Request(p) for p in problems]
        params = SamplingParams(n=args.n, temperature=args.temperature, max_tokens=args.max_tokens, seed=0)
        measure(policy, requests[:2], params, 2)  # warm-up
        rows = []
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            tokens, seconds = measure(policy, requests, params, bs)
            rows.append((bs, tokens, seconds, tokens / seconds))

    base = rows[0][3] if rows[0][0] == 1 else None
    print(f"\npolicy {path}; {args.requests} requests x n={args.n}, T={args.temperature}, "
          f"max_tokens={args.max_tokens}, {args.threads} thread(s)")
    print(f"{'batch':>6} {'tokens':>8} {'seconds':>8} {'tokens/s':>9} {'vs batch 1':>10}")
    for bs, tokens, seconds, rate in rows:
        ratio = f"{rate / base:.2f}x" if base else "-"
        print(f"{bs:>6} {tokens:>8} {seconds:>8.2f} {rate:>9.1f} {ratio:>10}")


if __name__ == "__main__":
    main()
