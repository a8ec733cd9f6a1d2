"""Scoring: one forward per batch of candidates, padding-blind, deterministic, resumable files."""

from __future__ import annotations

import json
import random

import pytest
import torch
from synthetic import candidates

from mmprm.policy.tiny.model import new_tiny_policy
from mmprm.prm.model import build_prm
from mmprm.prm.schemes import get_scheme
from mmprm.prm.score import StepPRM, score_file


@pytest.fixture(scope="module")
def prm_parts():
    model, processor = new_tiny_policy(seed=4)
    prm = build_prm(model, processor, get_scheme("mmprm"), "token")
    emb = prm.backbone.get_input_embeddings().weight
    with torch.no_grad():  # a random readout, so scores spread out
        emb.add_(0.5 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(0)))
    return prm, processor


def items(problems, n=6):
    rng = random.Random(3)
    return [(p, [c[0] for c in candidates(p, 3, rng)]) for p in problems[:n]]


def flat(scores):
    return [x for problem in scores for cand in problem for x in cand]


def test_padding_side_and_batch_size_do_not_change_scores(prm_parts, test_problems):
    prm, processor = prm_parts
    scheme = get_scheme("mmprm")
    data = items(test_problems)
    right = flat(StepPRM(prm, processor, scheme, batch_size=16, padding_side="right").score_many(data))
    left = flat(StepPRM(prm, processor, scheme, batch_size=16, padding_side="left").score_many(data))
    alone = flat(StepPRM(prm, processor, scheme, batch_size=1).score_many(data))
    assert len(right) == sum(len(c) for _, cands in data for c in cands)
    assert max(abs(a - b) for a, b in zip(right, left)) < 1e-5
    assert max(abs(a - b) for a, b in zip(right, alone)) < 1e-5
    assert max(right) - min(right) > 1e-3  # the scores are not all the same


def test_scoring_is_deterministic_and_one_forward_scores_every_step(prm_parts, test_problems):
    prm, processor = prm_parts
    scorer = StepPRM(prm, processor, get_scheme("mmprm"), batch_size=64)
    data = items(test_problems, 4)
    calls = []
    hook = prm.backbone.model.language_model.register_forward_hook(lambda *a: calls.append(1))
    try:
        first = scorer.score_many(data)
    finally:
        hook.remove()
    assert len(calls) == 1  # 16 candidates, every step of each, one forward pass
    assert scorer.score_many(data) == first
    # a candidate scores the same alone as among the others of its problem
    problem, cands = data[1]
    assert scorer.score(problem, [cands[2]])[0] == pytest.approx(first[1][2], abs=1e-5)


def test_a_step_score_depends_on_that_step_and_those_before_only(prm_parts, test_problems):
    prm, processor = prm_parts
    scorer = StepPRM(prm, processor, get_scheme("mmprm"))
    a, b = scorer.score(test_problems[0], [["bar A is 7", "7 + 1 = 8", "8 - 2 = 6"], ["bar A is 7", "7 + 1 = 8"]])
    assert a[:2] == pytest.approx(b, abs=1e-5)


def test_score_file_fills_step_scores_and_resumes(prm_parts, synth, tmp_path):
    prm, processor = prm_parts
    scorer = StepPRM(prm, processor, get_scheme("mmprm"), batch_size=8)
    problems, samples = synth / "test" / "problems.jsonl", synth / "test" / "samples.jsonl"
    small = tmp_path / "samples.jsonl"
    head = samples.read_text().splitlines(keepends=True)[:40]
    small.write_text("".join(head) + '{"problem_id": "not-there", "steps": ["x"]}\n')
    out = tmp_path / "scored.jsonl"
    summary = score_file(scorer, problems, small, out, batch_size=3, progress=False)
    assert (summary.problems, summary.solutions, summary.missing_problems) == (11, 40, 1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["steps"] for r in rows] == [json.loads(line)["steps"] for line in small.read_text().splitlines()][:40]
    assert all(len(r["step_scores"]) == len(r["steps"]) for r in rows)

    # a run killed mid-problem: a partial problem, a cut line, no ledger line; the rerun redoes that problem only
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:38]) + lines[38][:20])
    ledger = tmp_path / "scored.done.jsonl"
    ledger.write_text("".join(ledger.read_text().splitlines(keepends=True)[:-1]))
    again = score_file(scorer, problems, small, out, batch_size=3, progress=False)
    assert (again.skipped, again.solutions) == (9, 4)
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
