import pytest

from mmprm.steps import parse_output, render_steps, split_steps


def test_tags_with_answer():
    out = parse_output("<step>bar A is 7</step>\n<step>7 + 5 = 12</step>\n<answer>12</answer>")
    assert out.steps == ["bar A is 7", "7 + 5 = 12"] and out.answer_text == "12" and out.layout == "tags"


def test_unclosed_and_untagged_text_is_kept():
    out = parse_output("Let me look.<step>bar A is 7</step><step>7 + 5 =")
    assert out.steps == ["Let me look.", "bar A is 7", "7 + 5 ="]
    assert parse_output("<step>a<step>b</step><answer>3").answer_text == "3"
    assert parse_output("<step>a<step>b</step><answer>3").steps == ["a", "b"]


def test_step_k_prefixes():
    text = "Step 1: read the chart.\nIt shows 4.\nStep 2: 4 * 2 = 8\n**Step 3:** so the answer is 8"
    assert split_steps(text) == ["read the chart.\nIt shows 4.", "4 * 2 = 8", "so the answer is 8"]


def test_paragraphs_and_lines_without_any_tags():
    text = "First we add.\n\nThen we double.\n\n\nDone: 8"
    assert split_steps(text) == ["First we add.", "Then we double.", "Done: 8"]
    assert split_steps("a = 1\nb = 2\n") == ["a = 1", "b = 2"]
    assert split_steps("   ") == []


@pytest.mark.parametrize("style", ["tags", "step_k", "paragraphs"])
def test_render_is_the_inverse(style):
    steps = ["bar A is 7", "7 + 5 = 12", "12 / 3 = 4"]
    assert split_steps(render_steps(steps, style=style)) == steps


def test_render_with_answer_and_open_prefix():
    text = render_steps(["a", "b"], "4")
    assert parse_output(text).answer_text == "4"
    assert render_steps(["x"], style="step_k", open_last=True).endswith("Step 2:")
    with pytest.raises(ValueError, match="unknown step style"):
        render_steps(["x"], style="bogus")
