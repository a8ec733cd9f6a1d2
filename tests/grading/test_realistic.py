"""The rules grader against math-verify alone on realistic answers (our own cases, by class):
it must never agree with the expected verdict less often, and it must get each class right."""

import warnings

import pytest

from mmprm.grading import RuleGrader

# (gold, prediction, expected verdict), by the kind of answer that tripped graders up
CASES = {
    "answer in a sentence": [
        (r"x \geq 5", r"Therefore $x \geq 5$ is the solution.", True),
        ("5", "So the total is 5 apples.", True),
        (r"\frac{1}{2}", r"The answer is $\frac12$.", True),
        ("5", "The answer is 6, not 5.", False),
        ("12", "The bars add up to 12.", True),
        ("12", "The bars add up to 13.", False),
    ],
    "several boxed answers": [
        ("2, 3", r"$\boxed{2}$ and $\boxed{3}$", True),
        ("-1, 4", r"The roots are $\boxed{-1}$ and $\boxed{4}$.", True),
        ("2, 3", r"$\boxed{2}$ and $\boxed{5}$", False),
    ],
    "sets and tuples": [
        (r"\{1, 2\}", r"\{2, 1\}", True),
        (r"\{1, 2\}", "{1, 2}", True),
        ("(1, 2), (3, 4)", "(3, 4), (1, 2)", True),
        ("(1, 2)", "(2, 1)", False),
        (r"\{1, 2\}", r"\{1, 3\}", False),
    ],
    "intervals": [
        ("[2, 5)", "[2,5)", True),
        ("(0, 1)", "(0,1)", True),
        ("[2, 5)", "[2, 5]", False),
    ],
    "decimal commas where the gold uses them": [
        ("1,22", "1.22", True),
        ("1,22", "1,22", True),
        ("3,5", "3.5", True),
        ("1,22", "1.23", False),
        ("10,000", "10000", True),  # a thousands separator is still one
    ],
    "plain forms": [
        ("3", r"\boxed{3}", True),
        ("x=2", "2", True),
        ("0.5", r"\frac{1}{2}", True),
        (r"\sqrt{2}", "2^{1/2}", True),
        ("12", "120", False),
        ("7", "", False),
    ],
}


def _math_verify_alone(gold: str, pred: str) -> bool:
    from math_verify import parse, verify

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(verify(parse(f"${gold}$") or parse(gold), parse(pred)))


def test_never_worse_than_math_verify_alone():
    grader = RuleGrader(timeout=5)
    cases = [c for group in CASES.values() for c in group]
    ours = sum(grader.grade(g, p).equal == want for g, p, want in cases)
    alone = sum(_math_verify_alone(g, p) == want for g, p, want in cases)
    assert ours >= alone, (ours, alone, len(cases))
    assert ours == len(cases)


@pytest.mark.parametrize("kind", list(CASES))
def test_each_class_is_graded_right(kind):
    grader = RuleGrader(timeout=5)
    wrong = [(g, p) for g, p, want in CASES[kind] if grader.grade(g, p).equal != want]
    assert not wrong, wrong
