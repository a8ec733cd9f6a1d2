"""Continuous batching in the hf backend, and the annotation runner on top of it.

What must hold: a request that joins a batch already decoding gets exactly
what it would get alone (its seed decides, not its neighbours), whatever the
mix of settings in the batch; and annotating through the stream gives the
trees that round-by-round annotation gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate
from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.grading import RuleGrader
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.policy.hf import HFPolicy

WEAK = Path(__file__).resolve().parents[2] / "assets" / "tiny-policy-weak"


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    return load_problems(generate_synthetic(8, 11, folder, split="test", families=["bartotal"],
                                            min_steps=3, max_steps=3))


@pytest.fixture(scope="module")
def policy():
    return HFPolicy(WEAK, batch_size=6)


def _texts(continuations) -> list[str]:
    return [c.text for c in continuations]


def test_a_request_joining_a_running_batch_gets_what_it_gets_alone(policy, problems):
    sampled = SamplingParams(n=3, temperature=1.0, max_tokens=40, seed=1)
    greedy = SamplingParams(temperature=0, max_tokens=12)
    stopped = SamplingParams(n=2, temperature=1.0, top_k=20, top_p=0.9, max_tokens=40, stop=["+"], seed=2)
    first = [(Request(problems[0], seed=10), sampled), (Request(problems[1]), greedy)]
    later = [(Request(problems[2], ["bar A is 3"], seed=11), sampled), (Request(problems[3]), stopped),
             (Request(problems[4], seed=12), sampled)]
    stream = policy.stream()
    for key, (request, params) in enumerate(first):
        stream.submit(key, request, params)
    results = dict(stream.completed())  # the greedy request ends first; the sampled rows are mid-way
    assert list(results) == [1]
    assert stream.engine.rows, "the first request is still decoding"
    for key, (request, params) in enumerate(later, start=len(first)):
        stream.submit(key, request, params)
    while len(stream):
        results.update(stream.completed())
    for key, (request, params) in enumerate(first + later):
        alone = policy.sample_batch([request], params)[0]
        assert _texts(results[key]) == _texts(alone), key
    assert len(results[0]) == 3 and len(set(_texts(results[0]))) > 1
    assert all(c.text.count("+") == 0 and c.completion_tokens < 40 for c in results[3])  # ended at the stop string


def test_rows_never_exceed_the_batch_and_freed_rows_are_refilled(policy, problems):
    params = SamplingParams(n=2, temperature=1.0, max_tokens=48, seed=0)
    engine = policy.batcher()
    jobs = [policy.job(i, [{"role": "user", "content": [{"type": "image", "image": p.images[0]},
                                                         {"type": "text", "text": p.question}]}],
                       params, i, continue_final_message=False) for i, p in enumerate(problems)]
    for job in jobs:
        engine.add(job)
    widths, finished = [], []
    while not engine.idle:
        finished += engine.step()
        widths.append(len(engine.rows))
    assert max(widths) <= policy.batch_size and len(finished) == len(jobs)
    # a job joined while others were still decoding: the batch refilled before it emptied
    assert any(b > a > 0 for a, b in zip(widths, widths[1:]))


class Rounds(Policy):
    """The same backend seen through the default stream: one `sample_batch` per round."""

    def __init__(self, inner: Policy):
        self.inner, self.name = inner, inner.name

    def sample_batch(self, requests, params):
        return self.inner.sample_batch(requests, params)


def test_annotation_through_the_stream_equals_annotation_by_rounds(policy, problems, tmp_path):
    cfg = AnnotateConfig(k=4, max_searches=2, rollout_budget=24, max_tokens=48, paths="rollouts", seed=3)
    streamed = annotate(problems, policy, RuleGrader(), tmp_path / "stream", cfg, inflight=3, progress=False)
    rounds = annotate(problems, Rounds(policy), RuleGrader(), tmp_path / "rounds", cfg, inflight=3, progress=False)
    assert streamed["rollouts"] > len(problems) * cfg.k  # the searches ran
    for key in ("paths", "labels", "rollouts", "generated_tokens", "label_histogram", "skipped"):
        assert streamed[key] == rounds[key], key
    trees = sorted((tmp_path / "stream" / "trees").glob("*.json"))
    assert [t.read_text() for t in trees] == [(tmp_path / "rounds" / "trees" / t.name).read_text() for t in trees]


def test_annotation_through_a_served_policy_equals_the_local_one(policy, problems, tmp_path):
    """The runner's stream over HTTP (each query posted as it arises) against serve-policy on loopback."""
    from loopback import serving
    from mmprm.policy.openai import OpenAIPolicy
    from mmprm.serve.openai_server import create_app

    cfg = AnnotateConfig(k=3, max_searches=2, rollout_budget=18, max_tokens=48, paths="rollouts", seed=4)
    local = annotate(problems[:5], policy, RuleGrader(), tmp_path / "local", cfg, inflight=3, progress=False)
    app = create_app(policy, model_name="weak")
    with serving(app) as url:
        client = OpenAIPolicy(f"{url}/v1", "weak", timeout=60)
        try:
            served = annotate(problems[:5], client, RuleGrader(), tmp_path / "served", cfg, inflight=3,
                              progress=False)
        finally:
            client.close()
    for key in ("paths", "labels", "rollouts", "generated_tokens", "label_histogram", "skipped"):
        assert served[key] == local[key], key
    assert app.state.stats["peak_rows"] > cfg.k  # queries of two problems decoded together (6 rows fit)
