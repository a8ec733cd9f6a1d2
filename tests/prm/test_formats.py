"""One formatter per scheme: training and scoring see byte-identical step layouts."""

from __future__ import annotations

import pytest
import torch
from standins import standin

from mmprm.labels import LabelledPath
from mmprm.prm.formats import encode
from mmprm.prm.schemes import SCHEMES, STEP_SCORE, get_scheme
from mmprm.prm.score import StepPRM
from mmprm.prm.train import collate_examples, encode_examples
from mmprm.types import Problem

STEPS = [["bar A is 7", "bar B is 5", "7 + 5 = 12"], ["bar A is 7", "7 - 5 = 2"], ["bar C is 3"]]


def problem(test_problems, images: bool) -> Problem:
    p = test_problems[0]
    return Problem(p.id, p.question, p.answer, list(p.images) if images else [], meta=p.meta)


@pytest.mark.parametrize("name", list(SCHEMES))
def test_training_and_scoring_see_identical_layouts(name, test_problems):
    scheme = get_scheme(name)
    model, processor = standin(name)
    prob = problem(test_problems, scheme.shows_images)
    paths = [LabelledPath(prob, steps, [1.0] * len(steps)) for steps in STEPS]
    examples, dropped = encode_examples(paths, scheme, processor)
    train_batch = collate_examples(examples, processor)

    prm = StepPRM(model, processor, scheme, batch_size=len(STEPS))
    rows = [prm.encode(prob, steps) for steps in STEPS]
    [(index, score_batch)] = list(prm.batches(rows))
    assert dropped == 0 and index == sorted(range(len(STEPS)), key=lambda i: len(rows[i].input_ids))

    for ex, row, steps in zip(examples, rows, STEPS):
        assert ex.input_ids == row.input_ids and ex.positions == row.positions
        assert len(row.positions) == len(steps)
    # the scoring batch holds the same rows, in length order
    reordered = collate_examples([examples[i] for i in index], processor)
    for key in ("input_ids", "attention_mask", "step_rows", "step_cols"):
        assert torch.equal(reordered[key], score_batch[key].cpu()), key
    if scheme.shows_images:
        assert torch.equal(reordered["pixel_values"], score_batch["pixel_values"].cpu())
    assert train_batch["targets"].shape == train_batch["step_rows"].shape


@pytest.mark.parametrize("name", [n for n, s in SCHEMES.items() if s.tag])
def test_each_step_is_scored_at_its_tag(name, test_problems):
    scheme = get_scheme(name)
    _, processor = standin(name)
    tok = getattr(processor, "tokenizer", processor)
    row = encode(scheme, processor, problem(test_problems, scheme.shows_images), STEPS[0])
    assert [tok.convert_ids_to_tokens(row.input_ids[i]) for i in row.positions] == [scheme.tag] * 3
    text = tok.decode(row.input_ids)
    # the step text before each tag, in order
    assert [text.find(s) for s in STEPS[0]] == sorted(text.find(s) for s in STEPS[0])


def test_mm_prm_separates_steps_with_blank_lines_in_training_and_scoring(test_problems):
    """The reference's bug: trained on `<prm>\\n\\n`, scored on `<prm>` alone. Here one layout serves both."""
    _, processor = standin("mm-prm")
    row = encode(get_scheme("mm-prm"), processor, problem(test_problems, True), STEPS[0])
    text = processor.tokenizer.decode(row.input_ids)
    assert "Process: bar A is 7<prm>\n\nbar B is 5<prm>\n\n7 + 5 = 12<prm>" in text


def test_visualprm_reads_each_score_where_the_answer_is_predicted(test_problems):
    _, processor = standin("visualprm")
    row = encode(get_scheme("visualprm"), processor, problem(test_problems, True), STEPS[0])
    tok = processor.tokenizer
    assert [tok.decode(row.input_ids[i + 1]) for i in row.positions] == ["+"] * 3
    assert [tok.decode(row.input_ids[i - 1 : i + 1]) for i in row.positions] == ["assistant\n"] * 3


def test_a_step_that_contains_the_tag_still_gets_one_score(test_problems):
    _, processor = standin("mmprm")
    steps = [f"bar A is 7 {STEP_SCORE}", "7 + 5 = 12"]
    row = encode(get_scheme("mmprm"), processor, problem(test_problems, True), steps)
    assert len(row.positions) == 2


def test_images_for_a_text_only_backbone_are_refused(test_problems):
    _, tok = standin("math-shepherd")
    with pytest.raises(ValueError, match="text-only"):
        encode(get_scheme("mmprm"), tok, problem(test_problems, True), STEPS[0])


def test_unknown_scheme_is_named():
    with pytest.raises(ValueError, match="unknown PRM scheme 'nope'"):
        get_scheme("nope")


@pytest.mark.parametrize("name", ["mmprm", "mm-prm", "visualprm"])
def test_image_expansion_matches_the_processor(name, test_problems):
    """Image placeholders are expanded once per image, exactly as the processor does for the whole text."""
    from mmprm.io import load_image
    from mmprm.prm.formats import _RENDER

    scheme = get_scheme(name)
    _, processor = standin(name)
    prob = problem(test_problems, True)
    row = encode(scheme, processor, prob, STEPS[0])
    text = _RENDER[name](scheme, processor, prob, STEPS[0], prob.images)
    whole = processor(text=[text], images=[load_image(r) for r in prob.images])["input_ids"][0]
    assert row.input_ids == [int(i) for i in whole]
    assert row.input_ids.count(processor.image_token_id) == 16
