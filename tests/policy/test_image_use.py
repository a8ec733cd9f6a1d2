"""The trained policy reads the figure.

Given another problem's chart (the question, "the sum of all the bars", is
the same for every problem), its answers change far more often than when it
merely samples again with its own chart. Both runs use the same seed, so a
policy that ignored images would change its answers equally often in both.
Uses the committed strong checkpoint (docs/policy.md says how to rebuild it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.policy.base import Request, SamplingParams
from mmprm.policy.hf import HFPolicy

STRONG = Path(__file__).resolve().parents[2] / "assets" / "tiny-policy-strong"

pytestmark = pytest.mark.skipif(
    not (STRONG / "model.safetensors").is_file(), reason="assets/tiny-policy-strong is not built (docs/policy.md)"
)


def test_answers_follow_the_image_not_just_the_question(tmp_path):
    generate_synthetic(48, 901, tmp_path, split="test", families=["bartotal"], min_steps=3, max_steps=3)
    problems = load_problems(tmp_path / "problems.jsonl")
    swapped = [replace(p, images=problems[(i + 1) % len(problems)].images) for i, p in enumerate(problems)]
    assert sum(p.answer != q.answer for p, q in zip(problems, problems[1:] + problems[:1])) > 40
    policy = HFPolicy(STRONG, batch_size=48)
    params = SamplingParams(n=2, temperature=0.7, max_tokens=64)

    def answers(batch, seed):
        outs = policy.sample_batch([Request(p) for p in batch], replace(params, seed=seed))
        return [c.answer for cs in outs for c in cs]

    own, resampled, other_image = answers(problems, 1), answers(problems, 2), answers(swapped, 2)
    changed_by_resampling = sum(a != b for a, b in zip(own, resampled)) / len(own)
    changed_by_image = sum(a != b for a, b in zip(own, other_image)) / len(own)
    assert changed_by_image > 0.5 and changed_by_image > 3 * changed_by_resampling, (
        changed_by_image, changed_by_resampling)
