"""The synthetic generator: determinism, record validity, step range, split
disjointness, reference consistency, and the local step checker."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from mmprm.data.synth import (
    FAMILIES,
    first_wrong_step,
    generate_synthetic,
    local_step_labels,
    reference_text,
    split_of,
)
from mmprm.io import load_records, open_image
from mmprm.steps import parse_output
from mmprm.types import Problem


def _load(path: Path) -> list[Problem]:
    return load_records(path, Problem.from_dict)


@pytest.fixture(scope="module")
def train_set(tmp_path_factory) -> tuple[Path, list[Problem]]:
    out = tmp_path_factory.mktemp("train")
    path = generate_synthetic(80, 11, out)
    return path, _load(path)


def _ref_steps(p: Problem) -> list[str]:
    return [s["text"] for s in p.meta["reference_steps"]]


def test_same_seed_gives_identical_files_and_prints_nothing(tmp_path, capsys):
    a = generate_synthetic(24, 5, tmp_path / "a")
    b = generate_synthetic(24, 5, tmp_path / "b")
    assert capsys.readouterr().out == ""
    assert a.read_bytes() == b.read_bytes()
    pngs = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    assert len(pngs) == 24
    for name in pngs:
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()
    c = generate_synthetic(24, 6, tmp_path / "c")
    assert c.read_bytes() != a.read_bytes()


def test_records_load_and_images_open(train_set):
    path, problems = train_set
    assert len(problems) == 80
    assert len({p.id for p in problems}) == 80
    assert {p.meta["family"] for p in problems} == set(FAMILIES)
    for p in problems:
        assert p.id.startswith("syn-train-11-")
        assert p.source == f"synthetic/{p.meta['family']}"
        assert p.meta["split"] == "train" and p.meta["seed"] == 11
        assert p.images == [f"images/{p.id}.png"]
        img = open_image(p.images[0], path.parent)
        assert img.size == (112, 112)
        assert Image.open(path.parent / p.images[0]).mode == "RGB"


def test_reference_steps_are_consistent(train_set):
    _, problems = train_set
    for p in problems:
        ref = p.meta["reference_steps"]
        assert p.meta["n_steps"] == len(ref)
        assert 2 <= len(ref) <= 8
        assert ref[-1]["kind"] == "compute" and str(ref[-1]["value"]) == p.answer
        assert {s["kind"] for s in ref} == {"read", "compute"}
        assert all(0 <= s["value"] <= 99 for s in ref)
        for s in ref:
            if s["kind"] == "read":  # the value read is the figure's ground truth
                name = s["text"].rsplit(" is ", 1)[0]
                assert p.meta["objects"][name] == s["value"]
            else:  # the step states its own result
                assert s["text"].endswith(f"= {s['value']}")
        assert local_step_labels(p, _ref_steps(p)) == [True] * len(ref)
        assert first_wrong_step(p, _ref_steps(p)) is None
        parsed = parse_output(reference_text(p))
        assert parsed.steps == _ref_steps(p) and parsed.answer_text == p.answer


def test_question_numbers_are_only_the_constants_the_solution_adds(train_set):
    # the figure's values must be read from the image: the question may hold no number
    # but the constants that compute steps combine with (as their second operand)
    _, problems = train_set
    for p in problems:
        constants = {s["text"].split()[2] for s in p.meta["reference_steps"] if s["kind"] == "compute"}
        assert set(re.findall(r"\d+", p.question)) <= constants, p.question


def test_step_range_is_respected_for_every_family(tmp_path):
    for lo, hi in [(2, 2), (3, 5), (8, 8)]:
        path = generate_synthetic(24, 1, tmp_path / f"{lo}-{hi}", min_steps=lo, max_steps=hi)
        problems = _load(path)
        counts = {p.meta["n_steps"] for p in problems}
        assert counts == set(range(lo, hi + 1))
        assert {p.meta["family"] for p in problems} == set(FAMILIES)


def test_train_and_test_never_share_a_problem(tmp_path):
    def content(path):
        return {(p.meta["family"], json.dumps(sorted(p.meta["objects"].items())), p.question) for p in _load(path)}

    train = content(generate_synthetic(150, 0, tmp_path / "tr0")) | content(
        generate_synthetic(150, 1, tmp_path / "tr1")
    )
    test_problems = _load(generate_synthetic(150, 0, tmp_path / "te0", split="test"))
    test = {(p.meta["family"], json.dumps(sorted(p.meta["objects"].items())), p.question) for p in test_problems}
    assert len(train) > 250 and len(test) == 150  # problems within one file are distinct too
    assert not train & test
    assert all(p.meta["split"] == "test" and split_of(p.meta["content_hash"]) == "test" for p in test_problems)
    assert all(p.id.startswith("syn-test-0-") for p in test_problems)


def test_options_change_the_output(tmp_path):
    path = generate_synthetic(6, 2, tmp_path, families=["counting", "bars"], image_size=168)
    problems = _load(path)
    assert [p.meta["family"] for p in problems] == ["counting", "bars"] * 3
    assert all(Image.open(tmp_path / p.images[0]).size == (168, 168) for p in problems)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_size": 100},
        {"min_steps": 5, "max_steps": 3},
        {"max_steps": 9},
        {"min_steps": 1},
        {"families": ["clocks"]},
        {"split": "dev"},
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_synthetic(2, 0, tmp_path, **kwargs)


def test_a_small_corner_repeats_only_once_exhausted(tmp_path):
    # two-step geometry has about a hundred problems in all (square, equilateral, right angle)
    path = generate_synthetic(150, 0, tmp_path, families=["geometry"], min_steps=2, max_steps=2)
    keys = [p.meta["content_hash"] for p in _load(path)]
    first_repeat = next(i for i, k in enumerate(keys) if k in keys[:i])
    assert first_repeat >= 60
    assert len(set(keys)) >= 60
    assert all(split_of(k) == "train" for k in keys)


def _corrupt_value(text: str) -> str:
    head, _, value = text.rpartition(" ")
    return f"{head} {int(value) + 1}"


def test_checker_locates_an_injected_reading_error(train_set):
    _, problems = train_set
    tried = 0
    for p in problems:
        steps = _ref_steps(p)
        for k, s in enumerate(p.meta["reference_steps"]):
            if s["kind"] != "read":
                continue
            bad = steps[:k] + [_corrupt_value(steps[k])] + steps[k + 1 :]
            labels = local_step_labels(p, bad)
            assert labels == [i != k for i in range(len(bad))]
            assert first_wrong_step(p, bad) == k
            tried += 1
    assert tried > 100


def test_checker_locates_an_injected_arithmetic_error(train_set):
    _, problems = train_set
    tried = 0
    for p in problems:
        steps = _ref_steps(p)
        for k, s in enumerate(p.meta["reference_steps"]):
            if s["kind"] != "compute":
                continue
            bad = steps[:k] + [_corrupt_value(steps[k])] + steps[k + 1 :]
            assert first_wrong_step(p, bad) == k
            assert local_step_labels(p, bad)[k + 1 :] == [True] * (len(bad) - k - 1)
            tried += 1
    assert tried > 100


def test_checker_judges_each_step_on_its_own():
    p = Problem("x", "In the bar chart, what is A + B?", "12", meta={"objects": {"bar A": 7, "bar B": 5}})
    steps = [
        "bar A is 7",
        "The Bar  B is 5.",  # article, case, spacing and a full stop are tolerated
        "bar C is 3",  # no such bar
        "8 + 5 = 13",  # right arithmetic on a wrong number is locally right
        "7 + 5 = 13",
        "2 x 3 + 4 = 10",  # precedence, and 'x' for times
        "9 / 2 = 4",  # evaluated exactly, not floored
        "4 / 0 = 0",
        "so the answer is twelve",
        "",
    ]
    assert local_step_labels(p, steps) == [True, True, False, True, False, True, False, False, False, False]
    assert first_wrong_step(p, steps) == 2
    assert first_wrong_step(p, steps[:2]) is None
    with pytest.raises(ValueError, match="meta.objects"):
        local_step_labels(Problem("y", "q", "1"), ["1 + 1 = 2"])
