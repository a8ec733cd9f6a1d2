"""The likelihood baseline: per-step minimum token log-probability under the policy."""

from __future__ import annotations

import pytest
import torch

from mmprm.io import load_image
from mmprm.policy.prompt import build_messages
from mmprm.prm.likelihood import LikelihoodPRM
from mmprm.prm.load import load_prm
from mmprm.steps import STEP_OPEN, render_steps

CANDIDATES = [["bar A is 7", "bar B is 5", "7 + 5 = 12"], ["bar A is 11", "11 - 3 = 8"], []]


def direct(model, processor, problem, steps) -> list[float]:
    """One forward per step: the policy's prompt, the earlier steps, then this step's own tokens."""
    tok = processor.tokenizer
    prompt = processor.apply_chat_template(build_messages(problem), tokenize=False, add_generation_prompt=True)
    images = [load_image(r) for r in problem.images]
    out = []
    for i, step in enumerate(steps):
        context = processor(text=[prompt + render_steps(steps[:i]) + STEP_OPEN], images=images, return_tensors="pt")
        step_ids = tok(step, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = torch.cat([context["input_ids"], step_ids], dim=1).to(model.device)
        n = context["input_ids"].shape[1]
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                           pixel_values=context["pixel_values"].to(model.device),
                           image_grid_thw=context["image_grid_thw"].to(model.device),
                           mm_token_type_ids=(ids == model.config.image_token_id).long()).logits
        logp = torch.log_softmax(logits[0, n - 1 : -1].float(), dim=-1)
        out.append(logp.gather(1, step_ids[0][:, None].to(model.device)).min().item())
    return out


def test_min_token_log_prob_per_step_matches_a_direct_computation(base, test_problems):
    prm = load_prm(f"likelihood:{base}", batch_size=2)
    assert isinstance(prm, LikelihoodPRM) and prm.bounded is False
    problem = test_problems[0]
    scores = prm.score(problem, CANDIDATES)
    assert scores[2] == []
    for steps, got in zip(CANDIDATES, scores):
        assert got == pytest.approx(direct(prm.model, prm.processor, problem, steps), abs=1e-4)
        assert all(s <= 0 for s in got)


def test_step_tokens_are_the_step_text_as_the_policy_wrote_it(base, test_problems):
    prm = load_prm(f"likelihood:{base}")
    steps = CANDIDATES[0]
    row, groups = prm.encode(test_problems[0], steps)
    tok = prm.processor.tokenizer
    assert [tok.decode([row.input_ids[j] for j in g]) for g in groups] == steps
    assert row.positions == [j - 1 for g in groups for j in g]
