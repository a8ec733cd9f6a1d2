import pytest

from mmprm.grading.extract import extract_answer, last_boxed, normalize_answer, to_choice_letter


@pytest.mark.parametrize("text, expected", [
    (r"so the total is \boxed{60.}", "60"),
    (r"\boxed{\frac{1}{2}} and then \boxed{3}", "3"),
    (r"\boxed{\sqrt{x^{2}}}", r"\sqrt{x^{2}}"),
    ("The final answer is 42.", "42"),
    ("Therefore, the answer is $10{,}000$.", "10000"),
    ("The total is 1,234,567 apples", "1234567"),
    ("<step>7 + 5 = 12</step><answer>12</answer>", "12"),
    ("<answer>\\boxed{7}</answer>", "7"),
    ("we get 3, then 17 apples", "17"),
    ("x = -2.5 is the root", "-2.5"),
    ("nothing numeric here", None),
    ("", None),
])
def test_extract(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is (E)", "E"),
    ("The answer is E.", "E"),
    ("so (B) must be right", "B"),
    (r"\boxed{C}", "C"),
    ("The answer is (Z)", "(Z)"),  # Z is not an option: kept as text
])
def test_extract_letters_with_choices(text, expected):
    assert extract_answer(text, ["1", "2", "3", "4", "5"]) == expected


def test_choice_letter_both_ways():
    choices = ["12 cm", r"\frac{1}{2}", "triangle"]
    assert to_choice_letter("B", choices) == "B"
    assert to_choice_letter("(A)", choices) == "A"
    assert to_choice_letter("Triangle", choices) == "C"
    assert to_choice_letter("12  cm", choices) == "A"
    assert to_choice_letter("D", choices) is None
    assert to_choice_letter("B", None) is None


def test_normalize_and_boxed():
    assert normalize_answer(r"\text{(B)}") == "B"
    assert normalize_answer("$5$.") == "5"
    assert last_boxed(r"\boxed{a{b}c") is None
    assert last_boxed(r"\fbox{9}") == "9"
