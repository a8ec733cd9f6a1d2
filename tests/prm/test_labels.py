"""Label types: prefix labels as annotated, local labels from a judge."""

from __future__ import annotations

import json

import pytest

from mmprm.prm.labels import (
    ArithmeticJudge,
    StepJudge,
    SyntheticJudge,
    default_judge,
    load_labelled,
    prefix_from_local,
)
from mmprm.types import Problem


@pytest.mark.parametrize("step, verdict", [
    ("7 + 5 = 12", True), ("7 + 5 = 13", False), ("So 3 × 4 = 12 apples.", True), ("(3 + 4) * 2 = 14", True),
    ("10 / 3 = 3.33", True), ("10 / 3 = 3.34", False), ("12 - 15 = -3", True), ("2^3 = 8", True),
    ("6*9 = 54 = 50 + 4", True), ("6*9 = 54 = 50 + 5", False), ("5 / 0 = 1", False),
    ("x + 3 = 5", None), ("2x + 3 = 7", None), ("the triangle is isosceles", None), ("(so 3 + 4 = 7)", True),
])
def test_arithmetic_judge(step, verdict):
    assert ArithmeticJudge().check(step) is verdict


def test_prefix_labels_chain_local_verdicts():
    assert prefix_from_local([1.0, 1.0, 0.0, 1.0]) == [1.0, 1.0, 0.0, 0.0]
    assert prefix_from_local([1.0, None, 1.0, 0.0, 1.0]) == [1.0, None, None, 0.0, 0.0]


def test_synthetic_problems_are_judged_by_their_ground_truth(test_problems):
    p = test_problems[0]
    assert isinstance(default_judge(p), SyntheticJudge)
    assert isinstance(default_judge(Problem("q", "What is 2 + 2?", "4")), ArithmeticJudge)


def test_annotated_paths_give_prefix_or_local_labels(synth):
    data = synth / "train" / "paths-small.jsonl"
    first = json.loads(data.read_text().splitlines()[0])
    prefix = load_labelled(data, labels="prefix")
    local = load_labelled(data, labels="local")
    assert prefix[0].targets == first["labels"] and prefix[0].steps == first["steps"]
    assert [p.targets for p in local] == [p.targets for p in prefix]  # the file holds local labels
    assert all(ref.startswith(str(synth)) for p in prefix for ref in p.problem.images)  # absolute in memory


def test_samples_with_problems_give_both_label_types(synth):
    kwargs = {"samples": synth / "test" / "samples.jsonl", "problems": synth / "test" / "problems.jsonl"}
    local = load_labelled(**kwargs, labels="local")
    prefix = load_labelled(**kwargs, labels="prefix")
    assert len(local) == len(prefix) == 240
    wrong = next(p for p in local if 0.0 in p.targets[:-1])
    chained = next(p for p in prefix if p.steps == wrong.steps)
    assert chained.targets == prefix_from_local(wrong.targets) and chained.targets[-1] == 0.0


def test_a_plugged_in_judge_and_undecided_steps(synth):
    class Unsure(StepJudge):
        def judge(self, problem, steps):
            return [None] * (len(steps) - 1) + [True]

    paths = load_labelled(samples=synth / "test" / "samples.jsonl", problems=synth / "test" / "problems.jsonl",
                          labels="local", judge=Unsure())
    assert all(p.targets[:-1] == [None] * (len(p.steps) - 1) and p.targets[-1] == 1.0 for p in paths)


def test_duplicates_are_dropped_and_bad_arguments_named(synth):
    data = synth / "train" / "paths-small.jsonl"
    twice = synth / "train" / "paths-twice.jsonl"
    twice.write_text(data.read_text() * 2)
    assert len(load_labelled(twice)) == len(load_labelled(data))
    assert len(load_labelled(twice, dedupe=False)) == 2 * len(load_labelled(data))
    with pytest.raises(ValueError, match="either data"):
        load_labelled(data, samples=data)
    with pytest.raises(ValueError, match="--problems"):
        load_labelled(samples=data)
