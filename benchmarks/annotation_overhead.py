"""Annotation throughput against raw generation, same backend, one run.

At the default demo's annotation settings (the weak tiny policy through the
hf backend, 64 rows in flight, bar-total problems of 3 steps, k = 8, 6
searches, 120 rollouts a problem, 96 tokens, 16 problems in flight), on the
same synthetic training problems:

- raw generation: every problem's k root samples in one `sample_batch`, the
  backend's best case (one continuous batch, nothing else to do); and, as this
  benchmark measured it before, `inflight` problems' samples a call (each
  call's batch drains before the next);
- annotation through the hf backend's stream, either way it can run
  (`HFPolicy(streaming=...)`): by rounds (what was submitted between two
  `completed` calls decodes as one batch: "auto" on a CPU), and continuous
  (MC queries join the running batch as they arise: "auto" on CUDA);
  generated tokens/s including grading, tree bookkeeping and crash-safe writes;
- raw generation of the annotation's own MC queries: every query an
  annotation made (recorded in an untimed run), all sent at once into one
  stream. The same prompts and continuations, so the same prefill per
  generated token, but no waiting on grading or on earlier queries: the
  backend's best case for this workload;
- annotation by rounds without the prefix cache (`prefix_cache=0`: every MC
  query prefills its whole prompt, image included, as before the cache);
- annotation through the default stream (one `sample_batch` per round and
  distinct settings, a fresh batch each: the runner before streams);
- `transformers` `generate` in static batches of 64, the backend before
  continuous batching, as a reference for raw generation.

Deeper MC queries have longer prompts and shorter continuations than root
samples, so annotation does more prefill per generated token; the ratio
annotation / raw includes that.

Rows run interleaved, `--repeats` times. The machine's speed drifts by up to
30% within minutes, so a best-of-n per row compares rows timed at different
speeds; the ratios are taken within each repeat (a row against the baseline
timed just before it) and their median reported, with the range.

Run by hand:  .venv/bin/python benchmarks/annotation_overhead.py [--problems 96] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate
from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.grading import RuleGrader
from mmprm.io import load_image
from mmprm.policy.base import Policy, Request, SampleStream, SamplingParams
from mmprm.policy.hf import HFPolicy
from mmprm.policy.prompt import build_messages

DEMO = AnnotateConfig(k=8, max_searches=6, rollout_budget=120, max_tokens=96, paths="rollouts", temperature=1.0)


class Rounds(Policy):
    """The backend seen through the default stream: one `sample_batch` per round and settings."""

    def __init__(self, inner: Policy):
        self.inner, self.name = inner, inner.name

    def sample_batch(self, requests, params):
        return self.inner.sample_batch(requests, params)


class Recording(Policy):
    """The backend's own stream, each submitted query kept in `queries`."""

    def __init__(self, inner: Policy):
        self.inner, self.name = inner, inner.name
        self.queries: list[tuple[Request, SamplingParams]] = []

    def stream(self):
        return RecordingStream(self, self.inner.stream())


class RecordingStream(SampleStream):
    """Passes every request to the inner stream, noting it in the policy's `queries` first."""

    def __init__(self, policy: Recording, inner: SampleStream):
        super().__init__(policy)
        self.inner = inner

    def submit(self, key, request, params):
        self.policy.queries.append((request, params))
        self.inner.submit(key, request, params)

    def __len__(self):
        return len(self.inner)

    def completed(self):
        return self.inner.completed()

    def close(self):
        self.inner.close()


def generate_baseline(policy: HFPolicy, problems, params: SamplingParams) -> tuple[int, str]:
    """Root samples with `model.generate` in static batches: (completion tokens, note)."""
    rows = [p for p in problems for _ in range(params.n)]
    tokens = 0
    for i in range(0, len(rows), policy.batch_size):
        chunk = rows[i : i + policy.batch_size]
        texts = [policy.job(0, build_messages(p), params, 0, True).text for p in chunk]
        inputs = policy.processor(text=texts, images=[load_image(p.images[0], {}) for p in chunk], padding=True,
                                  return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = policy.model.generate(**inputs, do_sample=True, temperature=params.temperature, top_k=None,
                                        max_new_tokens=params.max_tokens, eos_token_id=policy._eos,
                                        pad_token_id=policy.tokenizer.pad_token_id)
        for row in out[:, inputs["input_ids"].shape[1]:].tolist():
            ended = next((j for j, t in enumerate(row) if t in policy._eos), None)
            tokens += len(row) if ended is None else ended + 1
    return tokens, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="assets/tiny-policy-weak")
    parser.add_argument("--problems", type=int, default=96)
    parser.add_argument("--batch", type=int, default=64, help="rows in flight (the demo's policy_batch)")
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="runs of every row, interleaved")
    args = parser.parse_args()
    torch.set_num_threads(1)
    policy = HFPolicy(args.policy, batch_size=args.batch, streaming="rounds")
    continuous = HFPolicy(args.policy, batch_size=args.batch, streaming="continuous")
    uncached = HFPolicy(args.policy, batch_size=args.batch, streaming="rounds", prefix_cache=0)
    params = SamplingParams(n=DEMO.k, temperature=DEMO.temperature, max_tokens=DEMO.max_tokens, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        problems = load_problems(generate_synthetic(args.problems, 1000, tmp, split="train", families=["bartotal"],
                                                    min_steps=3, max_steps=3))
        # warm-up, not timed: the engine, and the grader's math-verify worker (a process that takes a second to start)
        RuleGrader().grade("1/2", "0.5")
        annotate(problems[:4], policy, RuleGrader(), f"{tmp}/warm-up", DEMO, inflight=args.inflight, progress=False)
        recording = Recording(policy)
        annotate(problems, recording, RuleGrader(), f"{tmp}/recorded", DEMO, inflight=args.inflight, progress=False)

        def raw_one_stream():
            out = policy.sample_batch([Request(p) for p in problems], params)
            return sum(c.completion_tokens for conts in out for c in conts), ""

        def raw_by_calls():
            tokens = 0
            for i in range(0, len(problems), args.inflight):
                out = policy.sample_batch([Request(p) for p in problems[i : i + args.inflight]], params)
                tokens += sum(c.completion_tokens for conts in out for c in conts)
            return tokens, ""

        def raw_same_queries():
            stream, tokens = policy.stream(), 0
            for key, (request, query_params) in enumerate(recording.queries):
                stream.submit(key, request, query_params)
            while len(stream):
                tokens += sum(c.completion_tokens for _, conts in stream.completed() for c in conts)
            stream.close()
            return tokens, f"{len(recording.queries)} queries"

        def annotation(backend, folder):
            def run():
                stats = annotate(problems, backend, RuleGrader(), f"{tmp}/{folder}{len(os.listdir(tmp))}", DEMO,
                                 inflight=args.inflight, progress=False)
                return stats["generated_tokens"], f"{stats['rollouts']} rollouts, {stats['annotated']} annotated"
            return run

        measures = {
            "raw generation (one stream)": raw_one_stream,
            f"raw, {args.inflight} problems a call": raw_by_calls,
            "raw, the annotation's queries at once": raw_same_queries,
            "annotation, hf stream by rounds (auto on CPU)": annotation(policy, "rounds"),
            "annotation, hf stream continuous (auto on CUDA)": annotation(continuous, "continuous"),
            "annotation, by rounds, no prefix cache": annotation(uncached, "uncached"),
            "annotation, default stream (sample_batch a round)": annotation(Rounds(policy), "default"),
            "raw, transformers generate (static batches)": lambda: generate_baseline(policy, problems, params),
        }
        runs: dict[str, list[tuple[int, float, str]]] = {name: [] for name in measures}
        for _ in range(args.repeats):  # interleaved, so drift in the machine's speed hits every row alike
            for name, measure in measures.items():
                start = time.perf_counter()
                tokens, note = measure()
                runs[name].append((tokens, time.perf_counter() - start, note))
    names = list(measures)
    rate = {name: [tokens / seconds for tokens, seconds, _ in runs[name]] for name in names}

    def ratios(name: str, base: str) -> str:
        """Median and range over repeats of the row's speed over the baseline's in the same repeat."""
        r = sorted(a / b for a, b in zip(rate[name], rate[base]))
        return f"{statistics.median(r):.2f} ({r[0]:.2f}-{r[-1]:.2f})"

    print(f"\npolicy {args.policy}, {args.problems} problems, k={DEMO.k}, {args.batch} rows in flight, "
          f"{args.inflight} problems in flight, one torch thread, {args.repeats} repeats")
    print("ratios: median over repeats of the row's tokens/s over the baseline's in the same repeat (range)")
    print(f"{'':52} {'tokens':>7} {'best s':>7} {'best tok/s':>10} {'/ raw':>17} {'/ same queries':>17}")
    for name in names:
        tokens, seconds, note = min(runs[name], key=lambda run: run[1])
        print(f"{name:52} {tokens:>7} {seconds:>7.2f} {tokens / seconds:>10.0f} {ratios(name, names[0]):>17} "
              f"{ratios(name, names[2]):>17}  {note}")

if __name__ == "__main__":
    main()
