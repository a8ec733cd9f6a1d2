"""The PRM network: new tokens, frozen vision, the two readouts, save and load, LoRA."""

from __future__ import annotations

import random

import pytest
import torch
from synthetic import candidates

from mmprm.backbone import apply_lora, freeze_vision
from mmprm.policy.tiny.model import new_tiny_policy
from mmprm.prm.model import add_tokens, build_prm, load_prm_model, save_prm
from mmprm.prm.schemes import STEP_SCORE, get_scheme
from mmprm.prm.score import StepPRM


def test_step_token_is_added_with_the_mean_embedding():
    model, processor = new_tiny_policy(seed=1)
    tok = processor.tokenizer
    known = len(tok)
    before = model.get_input_embeddings().weight[:known].detach().clone()
    assert add_tokens(model, tok, [STEP_SCORE, "+"]) == [STEP_SCORE]  # "+" is one token already
    new_id = tok.convert_tokens_to_ids(STEP_SCORE)
    assert new_id == known and tok.tokenize(f"a{STEP_SCORE}b") == ["a", STEP_SCORE, "b"]
    emb = model.get_input_embeddings().weight
    assert torch.allclose(emb[new_id], before.mean(dim=0))
    assert torch.equal(emb[:known], before)  # nothing else moved


def test_embeddings_grow_when_the_vocabulary_is_full():
    model, processor = new_tiny_policy(seed=1)
    tok = processor.tokenizer
    rows = model.get_input_embeddings().weight.shape[0]
    fillers = [f"<filler_{i}>" for i in range(rows - len(tok))]
    add_tokens(model, tok, fillers)
    assert model.get_input_embeddings().weight.shape[0] == rows
    add_tokens(model, tok, [STEP_SCORE])
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == len(tok) == rows + 1
    assert torch.allclose(emb[-1], emb[:rows].mean(dim=0))
    assert model.get_output_embeddings().weight is emb  # still tied


def test_vision_tower_is_frozen_by_default_and_only_it():
    model, processor = new_tiny_policy(seed=1)
    prm = build_prm(model, processor, get_scheme("mmprm"), "token")
    vision = [p.requires_grad for n, p in prm.named_parameters() if ".visual." in n]
    language = [p.requires_grad for n, p in prm.named_parameters() if ".language_model." in n]
    assert vision and not any(vision) and all(language)
    model2, processor2 = new_tiny_policy(seed=1)
    unfrozen = build_prm(model2, processor2, get_scheme("mmprm"), "token", vision_frozen=False)
    assert all(p.requires_grad for p in unfrozen.parameters())
    assert freeze_vision(model2) == sum(p.numel() for p in model2.model.visual.parameters())


def _train_a_little(prm, processor, problems, steps=8):
    """A few optimizer steps on local labels, so a saved PRM differs from its initialisation."""
    from mmprm.labels import LabelledPath
    from mmprm.prm.train import collate_examples, encode_examples, step_loss

    rng = random.Random(0)
    paths = [LabelledPath(p, s, [float(x) for x in y]) for p in problems for s, y in candidates(p, 1, rng)]
    examples, _ = encode_examples(paths, get_scheme("mmprm"), processor)
    opt = torch.optim.AdamW([p for p in prm.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for i in range(steps):
        batch = collate_examples(examples[(i * 4) % len(examples):][:4], processor)
        targets, keep = batch.pop("targets"), batch.pop("supervised")
        loss = step_loss(prm(**batch), targets, keep, "soft")
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return prm.eval()


@pytest.mark.parametrize("head", ["token", "value"])
def test_saved_prm_loads_offline_and_scores_identically(head, test_problems, tmp_path):
    model, processor = new_tiny_policy(seed=2)
    prm = _train_a_little(build_prm(model, processor, get_scheme("mmprm"), head), processor, test_problems[:8])
    items = [(p, [c[0] for c in candidates(p, 2, random.Random(5))]) for p in test_problems[8:12]]
    before = StepPRM(prm, processor, get_scheme("mmprm")).score_many(items)
    save_prm(prm, processor, get_scheme("mmprm"), tmp_path / "prm")
    loaded, processor2, scheme = load_prm_model(tmp_path / "prm")
    assert loaded.readout == ("tokens" if head == "token" else "value") and scheme.name == "mmprm"
    after = StepPRM(loaded, processor2, scheme).score_many(items)
    assert after == before
    assert all(0 < x < 1 for per_problem in after for cand in per_problem for x in cand)


def test_value_head_is_a_scalar_on_the_hidden_state(test_problems):
    model, processor = new_tiny_policy(seed=2)
    prm = build_prm(model, processor, get_scheme("mmprm"), "value")
    assert prm.value_head.weight.shape == (1, model.config.text_config.hidden_size)
    scores = StepPRM(prm, processor, get_scheme("mmprm")).score(test_problems[0], [["bar A is 7", "7 + 1 = 8"]])
    with torch.no_grad():  # a zero head scores every step 0.5
        prm.value_head.weight.zero_()
    flat = StepPRM(prm, processor, get_scheme("mmprm")).score(test_problems[0], [["bar A is 7", "7 + 1 = 8"]])
    assert flat == [[0.5, 0.5]] and scores != flat


def test_lora_trains_adapters_and_saves_plain_weights(test_problems, tmp_path):
    pytest.importorskip("peft")
    model, processor = new_tiny_policy(seed=3)
    prm = build_prm(model, processor, get_scheme("mmprm"), "token")
    prm.backbone = apply_lora(prm.backbone, r=4, alpha=8)
    trainable = [n for n, p in prm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("visual" in n for n in trainable)
    prm = _train_a_little(prm, processor, test_problems[:8])
    assert any(p.abs().sum() > 0 for n, p in prm.named_parameters() if "lora_B" in n)  # adapters moved
    items = [(test_problems[9], [["bar A is 7", "7 + 5 = 12"]])]
    before = StepPRM(prm, processor, get_scheme("mmprm")).score_many(items)
    save_prm(prm, processor, get_scheme("mmprm"), tmp_path / "prm")
    loaded, processor2, scheme = load_prm_model(tmp_path / "prm")
    assert not hasattr(loaded.backbone, "peft_config")
    after = StepPRM(loaded, processor2, scheme).score_many(items)
    assert after[0][0] == pytest.approx(before[0][0], abs=1e-5)
