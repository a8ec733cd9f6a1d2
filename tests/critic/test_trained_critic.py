"""The trained critic: `mmprm critic train` (loss on the critique only, LoRA, bad records named),
its verdict probabilities read at the right tokens, and the critic used as a PRM and as
Refined-BoN's critic through the specs users type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from annotated import annotated
from safetensors.torch import load_file

from mmprm.cli import main
from mmprm.critic.base import load_critic
from mmprm.critic.critique import verdict_offsets
from mmprm.critic.model import HFCritic
from mmprm.critic.prompt import critic_messages
from mmprm.critic.train import load_critiques
from mmprm.critic.verdicts import UNREACHED, per_step
from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.io import RejectLog, rejected_path
from mmprm.policy.hf import HFPolicy
from mmprm.prm.load import load_prm
from mmprm.sft import collate, encode_chat

ROOT = Path(__file__).resolve().parents[2]
WEAK = ROOT / "assets" / "tiny-policy-weak"


@pytest.fixture(scope="module")
def critiques(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("critic")
    out = tmp / "critic" / "critiques.jsonl"
    assert main(["critic", "build-data", "--paths", str(annotated(tmp)), "--teacher", "sim:0", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def trained(critiques, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "critic"
    assert main(["critic", "train", "--data", str(critiques), "--init", str(WEAK), "--steps", "40",
                 "--batch-size", "4", "--lr", "3e-3", "--out", str(out)]) == 0
    return out


def test_training_lowers_the_loss_and_saves_a_loadable_critic(trained):
    log = json.loads((trained / "train_log.json").read_text())
    losses = [e["loss"] for e in log["losses"]]
    assert losses[-1] < 0.7 * losses[0]
    assert json.loads((trained / "critic_config.json").read_text())["layout"] == "compact"
    assert log["examples"] == 19 and log["rejected"] == 0
    critic = load_critic(f"hf:{trained}")
    assert isinstance(critic, HFCritic) and critic.layout == "compact"


def test_the_loss_is_on_the_critique_tokens_only(critiques):
    (problem, steps, text, layout), *_ = load_critiques(critiques)
    policy = HFPolicy(WEAK)
    ex = encode_chat(critic_messages(problem, steps, layout), text, policy.processor)
    batch = collate([ex], policy.processor, policy.model.config)
    labelled = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert policy.tokenizer.decode(labelled) == text + "<|im_end|>"


def test_verdict_probabilities_are_read_at_the_verdict_token(trained, critiques):
    """Against an independent reading: the model run on the prompt and the critique up to the
    verdict alone, its next-token distribution over the two words' first differing token."""
    critic = HFCritic(trained)
    (problem, steps, text, _), *_ = [r for r in load_critiques(critiques) if "right" in r[2]]
    chat = critic_messages(problem, steps, "compact")
    (found,) = critic._verdict_probabilities([chat], [text])
    offsets = verdict_offsets(text, "compact")
    assert len(found) == len(offsets) >= 1
    tok, model = critic.policy.tokenizer, critic.policy.model
    for at, p in zip(offsets, found):
        right = tok.encode(text[:at] + "right", add_special_tokens=False)
        wrong = tok.encode(text[:at] + "wrong", add_special_tokens=False)
        d = next(i for i, (a, b) in enumerate(zip(right, wrong)) if a != b)
        prefix = encode_chat(chat, "", critic.policy.processor)
        ids = prefix.ids[: prefix.n_prompt] + right[:d]
        batch = collate([type(prefix)(ids, len(ids), prefix.images)], critic.policy.processor, model.config)
        batch.pop("labels")
        with torch.inference_mode():
            logits = model(**batch).logits[0, -1]
        expected = logits[[right[d], wrong[d]]].softmax(-1)[0].item()
        assert p == pytest.approx(expected, abs=1e-4)


def test_sampled_critiques_are_averaged_step_by_step(trained, critiques):
    """With samples=3 each step's score is the mean over the greedy critique and two sampled
    ones of their per-step scores, each read as a single critique would be; the greedy
    critique is the one shown."""
    (problem, steps, _, _), *_ = load_critiques(critiques)
    critic = HFCritic(trained, samples=3, temperature=1.0, seed=5)
    (review,) = critic.review_many([(problem, steps)])
    (alone,) = HFCritic(trained).review_many([(problem, steps)])
    chat = critic_messages(problem, steps, "compact")
    sampled = critic.policy.generate_messages([chat], critic._sampling(), continue_final_message=False)[0]
    texts = [alone.text] + [g.text for g in sampled]
    each = [per_step(p, len(steps)) for p in critic._verdict_probabilities([chat] * 3, texts)]
    assert review.text == alone.text and review.parsed == alone.parsed
    assert review.step_correct == pytest.approx([sum(c) / 3 for c in zip(*each)])
    assert review.completion_tokens == alone.completion_tokens + sum(g.completion_tokens for g in sampled)
    with pytest.raises(ValueError, match="samples"):
        HFCritic(trained, samples=0)


def test_step_scores_follow_the_first_error_and_mark_unreached_steps():
    assert per_step([0.9, 0.2], 4) == [0.9, 0.2, 0.2, 0.2]  # after the first error: its value
    assert per_step([0.9], 3) == [0.9, UNREACHED, UNREACHED]  # cut off: no information
    assert per_step([0.8, 0.7, 0.9, 0.1], 3) == [0.8, 0.7, 0.9]  # reviews past the last step are ignored


def test_the_critic_scores_as_a_prm_and_critiques_reach_the_scored_file(trained, tmp_path):
    generated = tmp_path / "data"
    generate_synthetic(3, 7, generated, split="test", families=["bartotal"], min_steps=3, max_steps=3)
    problems = load_problems(generated / "problems.jsonl")
    samples = tmp_path / "samples.jsonl"
    lines = []
    for p in problems:
        ref = [s["text"] for s in p.meta["reference_steps"]]
        lines.append({"problem_id": p.id, "steps": ref, "answer": p.answer, "correct": True})
        lines.append({"problem_id": p.id, "steps": [ref[0] + "1", *ref[1:]], "answer": "0", "correct": False})
    samples.write_text("".join(json.dumps(x) + "\n" for x in lines))
    prm = load_prm(f"critic:{trained}")
    scores, notes = prm.explain_many([(problems[0], [lines[0]["steps"], lines[1]["steps"]])])
    assert all(0 <= s <= 1 for per in scores[0] for s in per) and all(len(s) == 3 for s in scores[0])
    assert all(isinstance(n, str) for n in notes[0])
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--prm", f"critic:{trained}", "--data", str(generated / "problems.jsonl"),
                 "--samples", str(samples), "--out", str(out)]) == 0
    scored = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(scored) == 6 and all(isinstance(s["meta"]["critique"], str) for s in scored)
    assert all(s["meta"]["prm"].startswith("critic-prm:critic:") for s in scored)


def test_an_oracle_critic_scores_by_its_verdicts(tmp_path):
    generate_synthetic(1, 3, tmp_path, split="test", families=["bartotal"], min_steps=3, max_steps=3)
    (p,) = load_problems(tmp_path / "problems.jsonl")
    ref = [s["text"] for s in p.meta["reference_steps"]]
    wrong = [ref[0], ref[1].rsplit(" ", 1)[0] + " 99", ref[2]]
    assert load_prm("critic:oracle").score(p, [ref, wrong]) == [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]


def test_bad_critique_records_are_named_and_skipped(critiques, tmp_path):
    lines = critiques.read_text().splitlines()
    bad = json.loads(lines[0])
    bad["critique"] = "step 1: garbled"
    other = json.loads(lines[1])
    other["layout"] = "poem"
    path = critiques.parent / "bad.jsonl"
    path.write_text("\n".join([json.dumps(bad), json.dumps(other), lines[2], "{not json"]) + "\n")

    rejects = RejectLog(tmp_path / "out.jsonl")
    kept = load_critiques(path, rejects)
    rejects.close()
    assert len(kept) == 1 and rejects.count == 3
    reasons = [json.loads(x) for x in rejected_path(tmp_path / "out.jsonl").read_text().splitlines()]
    assert reasons[0]["line"] == 1 and "no verdict" in reasons[0]["reason"]
    assert reasons[1]["line"] == 2 and "'layout'" in reasons[1]["reason"]
    with pytest.raises(FileNotFoundError, match="critic build-data"):
        load_critiques(tmp_path / "missing.jsonl")


def test_lora_training_saves_plain_weights_that_load_without_peft(critiques, tmp_path):
    out = tmp_path / "lora"
    assert main(["critic", "train", "--data", str(critiques), "--init", str(WEAK), "--steps", "4",
                 "--batch-size", "2", "--lora", "--lora-r", "4", "--out", str(out)]) == 0

    weights = load_file(out / "model.safetensors")
    assert not any("lora" in k for k in weights)
    base = load_file(WEAK / "model.safetensors")
    changed = [k for k in base if "layers" in k and "proj" in k and not torch.equal(base[k], weights[k])]
    assert changed and not any("visual" in k for k in changed)  # adapters merged into the language model only
    HFCritic(out)


def test_verdict_weight_weighs_the_verdict_tokens_and_is_the_plain_loss_at_one(critiques):
    from mmprm import sft
    from mmprm.critic.train import verdict_spans

    (problem, steps, text, layout), *_ = [r for r in load_critiques(critiques) if "wrong" in r[2]]
    policy = HFPolicy(WEAK)
    chat = critic_messages(problem, steps, layout)
    spans = verdict_spans(text, layout)
    assert [text[a:b] for a, b in spans] == [m for m in ("right", "wrong") for _ in range(text.count(f"| {m}"))]
    heavy = encode_chat(chat, text, policy.processor, emphasis=spans, weight=5.0)
    target = heavy.ids[heavy.n_prompt :]
    weighted = [policy.tokenizer.decode([t]) for t, w in zip(target, heavy.weights) if w == 5.0]
    assert "".join(weighted).replace(" ", "") == "".join(text[a:b] for a, b in spans)
    plain = encode_chat(chat, text, policy.processor)
    ones = sft.ChatExample(plain.ids, plain.n_prompt, plain.images, [1.0] * len(target))
    with torch.inference_mode():
        reference = policy.model(**sft.collate([plain], policy.processor, policy.model.config)).loss
        mine = sft._loss(policy.model, sft.collate([ones], policy.processor, policy.model.config))
        emphasised = sft._loss(policy.model, sft.collate([heavy], policy.processor, policy.model.config))
    assert float(mine) == pytest.approx(float(reference), rel=1e-5)
    assert float(emphasised) != pytest.approx(float(reference), rel=1e-3)


def test_the_critic_spec_takes_a_sample_count_and_names_a_bad_one(trained):
    assert load_critic(f"hf:{trained}?samples=3").samples == 3
    assert load_critic(f"hf:{trained}").samples == 1
    for bad in ("samples=0", "samples=x", "temperature=1"):
        with pytest.raises(ValueError, match="the only option is samples=N"):
            load_critic(f"hf:{trained}?{bad}")
    prm = load_prm(f"critic:{trained}?samples=2")
    assert prm.critic.samples == 2
