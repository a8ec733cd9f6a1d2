"""The critique format: every layout renders and parses back, and text that is cut off,
garbled or contradictory parses to no verdict with the reason, never an exception."""

from __future__ import annotations

import random
import string

import pytest

from mmprm.critic.critique import LAYOUTS, Critique, StepReview, parse, render

RIGHT = StepReview("read bar A", "the figure shows bar A at 9", "a reading", True)
WRONG = StepReview("read bar B", "the figure shows bar B at 6", "misread", False)
CASES = [
    (Critique((RIGHT, RIGHT, RIGHT), None), 3),
    (Critique((RIGHT, WRONG), 1, "bar B is 6"), 3),
    (Critique((WRONG,), 0, "bar A is 9"), 1),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("critique, n_steps", CASES)
def test_render_then_parse_gives_the_critique_back(layout, critique, n_steps):
    parsed = parse(render(critique, layout), n_steps, layout)
    assert parsed.reason is None and parsed.critique == critique


def test_the_compact_layout_reads_as_documented():
    text = render(CASES[1][0], "compact")
    assert text.splitlines() == [
        "step 1: read bar A | the figure shows bar A at 9 | a reading | right",
        "step 2: read bar B | the figure shows bar B at 6 | misread | wrong",
        "first error: 2",
        "correction: bar B is 6",
    ]
    prose = render(CASES[1][0], "prose")
    assert "Verdict: \\boxed{incorrect}" in prose and prose.endswith("Corrected step: bar B is 6")


@pytest.mark.parametrize("text, n_steps, reason", [
    ("step 1: a | b | c | right\nstep 2: a | b | c | wrong", 3, "no first-error line"),
    ("step 1: a | b | c | right\nfirst error: 4\ncorrection: x", 3, "past the last step"),
    ("step 1: a | b | c | right\nstep 2: a | b | c | wrong\nfirst error: 1\ncorrection: x", 3,
     "first error 1, but 2 steps reviewed"),
    ("step 1: a | b | c | wrong\nstep 2: a | b | c | wrong\nfirst error: 2\ncorrection: x", 3, "does not match"),
    ("step 1: a | b | c | right\nstep 2: a | b | c | wrong\nfirst error: 2\ncorrection:  ", 3, "without a correction"),
    ("step 1: a | b | c | right\nfirst error: none", 3, "1 of 3 steps reviewed"),
    ("step 1: a | b | c | wrong\nstep 2: a | b | c | right\nstep 3: a | b | c | right\nfirst error: none", 3,
     "a step is judged wrong"),
    ("step 2: a | b | c | right\nfirst error: none", 1, "out of order"),
    ("step 1: a | b | c | maybe\nfirst error: none", 1, "unreadable line"),
    ("first error: none\nfirst error: 1", 1, "two first-error lines"),
])
def test_malformed_compact_critiques_give_no_verdict_and_say_why(text, n_steps, reason):
    parsed = parse(text, n_steps, "compact")
    assert parsed.critique is None and reason in parsed.reason


def test_a_prose_review_without_its_verdict_is_no_verdict():
    text = render(CASES[1][0], "prose").replace("Verdict: \\boxed{correct}", "Verdict: probably fine")
    parsed = parse(text, 3, "prose")
    assert parsed.critique is None and "a verdict missing" in parsed.reason


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fuzzed_critiques_never_raise(layout):
    """Cut, spliced, duplicated and noised renderings: parse returns, and any critique it
    returns is consistent with the step count."""
    rng = random.Random(7)
    texts = [render(c, layout) for c, _ in CASES]
    seen_reasons = set()
    for _ in range(3000):
        text = rng.choice(texts)
        edit = rng.randrange(6)
        if edit == 0:
            text = text[: rng.randrange(len(text) + 1)]
        elif edit == 1:
            i = rng.randrange(len(text) + 1)
            text = text[:i] + "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 8))) + text[i:]
        elif edit == 2:
            lines = text.splitlines()
            rng.shuffle(lines)
            text = "\n".join(lines)
        elif edit == 3:
            text = text + "\n" + rng.choice(texts)
        elif edit == 4:
            text = text.replace(str(rng.randrange(1, 4)), str(rng.randrange(0, 10 ** rng.randrange(1, 30))))
        n_steps = rng.randrange(0, 5)
        parsed = parse(text, n_steps, layout)
        assert (parsed.critique is None) == (parsed.reason is not None)
        if parsed.critique is not None:
            assert parsed.critique.problem_with(n_steps) is None
        else:
            seen_reasons.add(parsed.reason.split(":")[0][:20])
    assert len(seen_reasons) >= 4  # the fuzz reached several kinds of failure


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="unknown critique layout"):
        render(CASES[0][0], "json")


def test_long_lines_parse_quickly_and_a_correction_may_read_like_a_heading():
    import time

    start = time.perf_counter()
    parsed = parse("step 1: " + "a | " * 2000 + "x", 1, "compact")
    assert parsed.critique is None and time.perf_counter() - start < 0.5
    text = render(CASES[1][0], "prose").replace("Corrected step: bar B is 6", "Corrected step:\nStep 2. bar B is 6")
    assert parse(text, 3, "prose").critique.correction == "Step 2. bar B is 6"
