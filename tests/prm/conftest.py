"""Shared PRM test data: a synthetic split, corrupted solutions with known wrong
steps, and a tiny Qwen2-VL base checkpoint whose tokenizer knows the data."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic, reference_text
from mmprm.io import write_jsonl
from mmprm.policy.prompt import build_messages
from mmprm.policy.tiny.model import new_tiny_policy, save_policy
from mmprm.types import AnnotatedPath, Solution

sys.path.insert(0, str(Path(__file__).parent))  # the helpers synthetic.py and standins.py


def corpus(problems):
    for p in problems:
        for m in build_messages(p):
            c = m["content"]
            yield f"{m['role']}\n" + (c if isinstance(c, str) else "".join(x.get("text", "") for x in c))
        yield reference_text(p)


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """train/ (200 problems) and test/ (60): paths.jsonl (paths-small.jsonl: its first 48) and
    samples.jsonl of the reference and 3 corrupted solutions per problem."""
    from synthetic import candidates

    d = tmp_path_factory.mktemp("prm-synth")
    for split, n, seed in (("train", 200, 11), ("test", 60, 12)):
        generate_synthetic(n, seed, d / split, split=split)
        problems = load_problems(d / split / "problems.jsonl")
        rng = random.Random(seed)
        paths, samples = [], []
        for p in problems:
            for steps, labels in candidates(p, 3, rng):
                path = AnnotatedPath.of(p, steps, [float(x) for x in labels])
                path.images = [str(Path(i).relative_to(d / split)) for i in p.images]
                paths.append(path)
                samples.append(Solution(p.id, steps, correct=all(labels)))
        write_jsonl(d / split / "paths.jsonl", paths)
        write_jsonl(d / split / "paths-small.jsonl", paths[:48])
        write_jsonl(d / split / "samples.jsonl", samples)
    return d


@pytest.fixture(scope="session")
def base(synth, tmp_path_factory):
    """A fresh tiny Qwen2-VL saved as a base checkpoint."""
    problems = load_problems(synth / "train" / "problems.jsonl")
    model, processor = new_tiny_policy(corpus(problems), seed=0)
    return save_policy(model, processor, tmp_path_factory.mktemp("prm-base") / "base")


@pytest.fixture(scope="session")
def test_problems(synth):
    return load_problems(synth / "test" / "problems.jsonl")
