"""Continuous batching in the hf backend, and the annotation runner on top of it.

What must hold: a request that joins a batch already decoding gets exactly
what it would get alone (its seed decides, not its neighbours), whatever the
mix of settings in the batch; a stream by rounds returns everything
submitted before each `completed`, as the same results; and annotating
through either stream gives the trees that round-by-round annotation gives.
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
from mmprm.policy.engine import Job
from mmprm.policy.hf import HFPolicy

WEAK = Path(__file__).resolve().parents[2] / "assets" / "tiny-policy-weak"


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    return load_problems(generate_synthetic(8, 11, folder, split="test", families=["bartotal"],
                                            min_steps=3, max_steps=3))


@pytest.fixture(scope="module")
def policy():
    return HFPolicy(WEAK, batch_size=6, streaming="continuous")


@pytest.fixture(scope="module")
def by_rounds():
    return HFPolicy(WEAK, batch_size=6, streaming="rounds")


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


def test_a_stream_by_rounds_returns_each_round_whole_with_what_each_request_gets_alone(by_rounds, problems):
    assert HFPolicy(WEAK).streaming == "rounds"  # "auto" on a CPU
    with pytest.raises(ValueError, match="streaming must be one of"):
        HFPolicy(WEAK, streaming="eager")
    sampled = SamplingParams(n=3, temperature=1.0, max_tokens=40, seed=1)
    greedy = SamplingParams(temperature=0, max_tokens=12)
    rounds = [[(Request(problems[0], seed=10), sampled), (Request(problems[1]), greedy)],
              [(Request(problems[2], ["bar A is 3"], seed=11), sampled), (Request(problems[3]), greedy)]]
    stream = by_rounds.stream()
    for number, round_ in enumerate(rounds):
        for key, (request, params) in enumerate(round_):
            stream.submit((number, key), request, params)
        results = dict(stream.completed())
        assert sorted(results) == [(number, key) for key in range(len(round_))] and not len(stream)
        for key, (request, params) in enumerate(round_):
            assert _texts(results[number, key]) == _texts(by_rounds.sample_batch([request], params)[0])
    assert stream.completed() == []


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


def test_annotation_through_either_stream_equals_annotation_by_rounds(policy, by_rounds, problems, tmp_path):
    cfg = AnnotateConfig(k=4, max_searches=2, rollout_budget=24, max_tokens=48, paths="rollouts", seed=3)
    rounds = annotate(problems, Rounds(policy), RuleGrader(), tmp_path / "rounds", cfg, inflight=3, progress=False)
    for name, backend in (("continuous", policy), ("hf-rounds", by_rounds)):
        streamed = annotate(problems, backend, RuleGrader(), tmp_path / name, cfg, inflight=3, progress=False)
        assert streamed["rollouts"] > len(problems) * cfg.k  # the searches ran
        for key in ("paths", "labels", "rollouts", "generated_tokens", "label_histogram", "skipped"):
            assert streamed[key] == rounds[key], (name, key)
        trees = sorted((tmp_path / name / "trees").glob("*.json"))
        assert len(trees) == len(problems)
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


def test_a_cached_prompt_prefill_gives_what_a_whole_prefill_gives(problems):
    """Prefix caching: the MC queries of a problem share its prompt's prefill. With a
    cache too small for the prompts in play (2 of 6), evictions happen mid-batch; the
    outputs, greedy and sampled, with and without a partial answer, stay those of
    prefilling every prompt whole."""
    cached, whole = HFPolicy(WEAK, batch_size=8, prefix_cache=2), HFPolicy(WEAK, batch_size=8, prefix_cache=0)
    prefixes = ([], ["bar A is 3"], ["bar A is 3", "bar B is 7"])
    requests = [Request(p, prefix) for p in problems[:6] for prefix in prefixes]
    greedy, sampled = SamplingParams(temperature=0, max_tokens=40), SamplingParams(n=3, temperature=1.0, max_tokens=40,
                                                                                   seed=3)
    for params in (greedy, sampled):
        expected = [_texts(c) for c in whole.sample_batch(requests, params)]
        assert [_texts(c) for c in cached.sample_batch(requests, params)] == expected
        assert [_texts(c) for c in cached.sample_batch(requests[::-1], params)] == expected[::-1]  # from the cache
        assert len(cached._prefixes) == 2
    assert not whole._prefixes


def test_a_prompt_that_does_not_split_at_a_token_boundary_is_prefilled_whole(policy, problems):
    """A job whose shared part ends inside a token ("...b" + "ar A is") cannot reuse
    the cached tokens; it is prefilled whole and gets what it would get uncached."""
    params = SamplingParams(temperature=0, max_tokens=24)
    base = policy.request_job(0, Request(problems[0], ["bar A is 3"]), params)
    cut = base.text.rindex("bar") + 1
    split = Job(1, base.text, base.images, params, [0], shared=cut)
    engine = policy.batcher()
    engine.add(Job(2, base.text[:cut], base.images, params, [0], shared=cut))  # caches the odd beginning
    engine.add(split)
    while not engine.idle:
        engine.step()
    assert engine._suffix(split) is None
    assert split.outputs[0].text == policy.run_jobs([base])[0][0].text
