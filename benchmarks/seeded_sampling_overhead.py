"""What per-request sampling seeds cost: the hf backend's RowSampler (each row's own
random stream, Gumbel-max) against transformers' own batch sampling, same run, same batch.

Run by hand (never by the test suite):

    PYTHONPATH=src python benchmarks/seeded_sampling_overhead.py [--requests 64] [--batch 32]

Prints tokens/s of both and their ratio, and whether each one's samples of a request are
the same when the request is sampled alone (the property the seeded sampler buys).
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

ASSET = Path(__file__).resolve().parents[1] / "assets" / "tiny-policy-weak"


class BatchSampledPolicy(HFPolicy):
    """The baseline: transformers samples the whole batch from the global RNG (seeded per call)."""

    @torch.inference_mode()
    def _run(self, texts, pics, params, row_seeds):
        inputs = self.processor(text=texts, images=pics or None, padding=True, return_tensors="pt",
                                add_special_tokens=False).to(self.device)
        torch.manual_seed(row_seeds[0])
        out = self.model.generate(**inputs, do_sample=True, temperature=params.temperature, top_p=params.top_p,
                                  top_k=params.top_k, max_new_tokens=params.max_tokens, eos_token_id=self._eos,
                                  pad_token_id=self.tokenizer.pad_token_id)
        width = inputs["input_ids"].shape[1]
        lens = inputs["attention_mask"].sum(dim=1).tolist()
        return [self._decode(row[width:].tolist(), n, params) for row, n in zip(out, lens)]


def run(policy: HFPolicy, requests: list[Request], params: SamplingParams) -> tuple[int, float, list[str]]:
    start = time.perf_counter()
    outs = policy.sample_batch(requests, params)
    seconds = time.perf_counter() - start
    return sum(c.completion_tokens for cs in outs for c in cs), seconds, [cs[0].text for cs in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:  # the images must outlive the sampling
        generate_synthetic(args.requests, 321, Path(tmp) / "data", split="test", families=["bartotal"],
                           min_steps=3, max_steps=3)
        problems = load_problems(Path(tmp) / "data" / "problems.jsonl")
        requests = [Request(p, seed=i) for i, p in enumerate(problems)]
        params = SamplingParams(temperature=1.0, max_tokens=args.max_tokens)
        print(f"{args.requests} requests, batch {args.batch}, T=1.0, max {args.max_tokens} tokens, one thread")
        rates = {}
        for name, cls in [("transformers batch sampling", BatchSampledPolicy), ("RowSampler (per request)", HFPolicy)]:
            policy = cls(ASSET, batch_size=args.batch)
            run(policy, requests[:2], params)  # warm-up
            tokens, seconds, texts = run(policy, requests, params)
            alone = [run(policy, [r], params)[2][0] for r in requests[:8]]
            rates[name] = tokens / seconds
            same = sum(a == t for a, t in zip(alone, texts[:8]))
            print(f"{name:>28}: {tokens / seconds:7.0f} tokens/s; a request sampled alone gives the same text "
                  f"in {same}/8")
    base, seeded = rates.values()
    print(f"RowSampler throughput / transformers' sampling: {seeded / base:.2f}x")


if __name__ == "__main__":
    main()
