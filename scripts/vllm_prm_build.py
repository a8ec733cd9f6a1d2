"""Tiny process reward models for vLLM's pooling endpoint (see scripts/vllm_prm_probe.md).

    python scripts/vllm_prm_build.py OUT          # build OUT/qwen-prm and OUT/shepherd-prm
    python scripts/vllm_prm_build.py check OUT URL_A [URL_B]

`OUT` gets two randomly initialised models, each with the tiny policy's
tokenizer plus its step tag as one added token:

(a) OUT/qwen-prm: Qwen2.5-Math-PRM layout. config.architectures is
    ["Qwen2ForProcessRewardModel"] (vLLM's class); weights are `model.*` (a
    Qwen2Model) and a 2-layer MLP head `score.0.{weight,bias}`,
    `score.2.{weight,bias}` (Linear(h, h), ReLU, Linear(h, 2)). Step tag
    `<extra_0>`; P(correct) is column 1 of the softmax.
(b) OUT/shepherd-prm: Math-Shepherd layout, a plain Qwen2ForCausalLM. Step tag
    `ки`; P(correct) = softmax over the `+` and `-` logits, the `+` column.

It also writes OUT/expected.json: the probe texts and the per-step
probabilities computed here with transformers, which `check` compares with
what vLLM's /pooling returns. Printed, as one JSON line: the tag ids and the
vLLM server flags for each model (add --model, --port, --enforce-eager ...).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

QWEN_TAG = "<extra_0>"
SHEPHERD_TAG = "ки"
GOOD, BAD = "+", "-"
CORPUS = ["Step 1: 2 + 3 = 5.", "Step 2: so the answer is 5.", "What is 4 times 6?", "10 - 7 = 3"]
QUESTION = "What is 2 + 3?"
STEPS = ["Step 1: 2 + 3 = 5.", "Step 2: So the answer is 5.", "Step 3: Check: 5 - 3 = 2."]


def _texts(tag: str, sep: str) -> list[str]:
    """Three scored texts: 3 steps, 1 step, and one without any tag."""
    return [
        QUESTION + "\n" + "".join(s + sep + tag + "\n" for s in STEPS),
        QUESTION + "\n" + STEPS[0] + sep + tag,
        QUESTION + "\n" + STEPS[0],
    ]


def _config(tok, **extra):
    from transformers import Qwen2Config

    from mmprm.policy.tiny.tokenizer import IM_END, PAD

    ids = tok.convert_tokens_to_ids
    return Qwen2Config(
        vocab_size=-(-len(tok) // 64) * 64,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 64: a size vLLM's CPU attention supports
        num_key_value_heads=1,
        max_position_embeddings=1024,
        bos_token_id=ids(PAD),
        eos_token_id=ids(IM_END),
        pad_token_id=ids(PAD),
        **extra,
    )


def _prm_class():
    import torch
    from torch import nn
    from transformers import Qwen2Model, Qwen2PreTrainedModel

    class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
        """Qwen2.5-Math-PRM's HF layout: a Qwen2Model and a Linear-ReLU-Linear head `score`."""

        def __init__(self, config):
            super().__init__(config)
            self.model = Qwen2Model(config)
            h = config.hidden_size
            self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))
            self.post_init()

        def forward(self, input_ids, attention_mask=None):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.score(hidden.to(torch.float32))

    return Qwen2ForProcessRewardModel


def _reload(folder: Path, tag: str, tag_id: int):
    """The tokenizer as vLLM (and any HF user) loads it from `folder`.

    Next to a qwen2 config.json, AutoTokenizer rebuilds it as a Qwen2Tokenizer,
    whose pre-tokenizer splits digits one by one: the ids differ from the
    in-memory tokenizer's, so the reference must use this one.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.convert_tokens_to_ids(tag) == tag_id, f"{tag} changed id on reload"
    assert tok(f"a {tag} b{tag}").input_ids.count(tag_id) == 2, f"{tag} is not one token"
    return tok


def build(out: Path) -> dict:
    import torch
    from transformers import Qwen2ForCausalLM

    from mmprm.policy.tiny.tokenizer import train_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    expected: dict = {}

    # (a) Qwen2.5-Math-PRM style
    tok = train_tokenizer(CORPUS)
    tok.add_tokens([QWEN_TAG], special_tokens=True)
    qwen_tag_id = tok.convert_tokens_to_ids(QWEN_TAG)
    model = _prm_class()(_config(tok, num_labels=2))
    with torch.no_grad():  # a head wide enough that the probabilities spread over (0, 1)
        for layer in (model.score[0], model.score[2]):
            layer.weight.normal_(0.0, 1.0 / layer.in_features**0.5)
            layer.bias.normal_(0.0, 0.1)
    model.eval()
    model.save_pretrained(out / "qwen-prm")
    tok.save_pretrained(out / "qwen-prm")
    tok = _reload(out / "qwen-prm", QWEN_TAG, qwen_tag_id)
    texts = _texts(QWEN_TAG, "")
    chat = [
        {"role": "system", "content": "Please reason step by step."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "".join(s + QWEN_TAG for s in STEPS)},
    ]
    rendered = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)
    rows = []
    with torch.no_grad():
        for text in [*texts, rendered]:
            ids = tok(text, return_tensors="pt").input_ids
            probs = model(ids)[0].softmax(-1)
            rows.append(probs[ids[0] == qwen_tag_id].tolist())
    expected["qwen"] = {"texts": texts, "probs": rows[:-1], "messages": chat, "rendered": rendered,
                        "messages_probs": rows[-1]}
    # a transformers reload (what a user would do) must give the same numbers
    reloaded = _prm_class().from_pretrained(out / "qwen-prm").eval()
    with torch.no_grad():
        ids = tok(texts[0], return_tensors="pt").input_ids
        again = reloaded(ids)[0].softmax(-1)[ids[0] == qwen_tag_id].tolist()
    assert max(abs(a - b) for r, s in zip(again, rows[0]) for a, b in zip(r, s)) < 1e-6, "reload differs"

    # (b) Math-Shepherd style
    tok = train_tokenizer(CORPUS)
    tok.add_tokens([SHEPHERD_TAG])
    ids_of = tok.convert_tokens_to_ids
    shepherd_tag_id, good_id, bad_id = ids_of(SHEPHERD_TAG), ids_of(GOOD), ids_of(BAD)
    assert len({shepherd_tag_id, good_id, bad_id}) == 3 and tok.unk_token_id not in (good_id, bad_id)
    model = Qwen2ForCausalLM(_config(tok, tie_word_embeddings=False))
    with torch.no_grad():  # wider `+`/`-` rows so P(+) spreads
        model.lm_head.weight[[good_id, bad_id]] *= 5
    model.eval()
    model.save_pretrained(out / "shepherd-prm")
    tok.save_pretrained(out / "shepherd-prm")
    tok = _reload(out / "shepherd-prm", SHEPHERD_TAG, shepherd_tag_id)
    assert [tok.convert_tokens_to_ids(t) for t in (GOOD, BAD)] == [good_id, bad_id]
    texts = _texts(SHEPHERD_TAG, " ")
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = tok(text, return_tensors="pt").input_ids
            logits = model(ids).logits[0][:, [good_id, bad_id]]
            rows.append(logits.softmax(-1)[ids[0] == shepherd_tag_id].tolist())
    expected["shepherd"] = {"texts": texts, "probs": rows}
    (out / "expected.json").write_text(json.dumps(expected, indent=1))

    common = ["--enforce-eager", "--dtype", "float32", "--max-model-len", "1024"]
    info = {
        "qwen": {
            "model": str(out / "qwen-prm"),
            "step_tag": QWEN_TAG,
            "step_tag_id": qwen_tag_id,
            "p_correct_column": 1,
            "flags": [*common, "--runner", "pooling", "--pooler-config", json.dumps({"step_tag_id": qwen_tag_id})],
        },
        "shepherd": {
            "model": str(out / "shepherd-prm"),
            "step_tag": SHEPHERD_TAG,
            "step_tag_id": shepherd_tag_id,
            "good_bad_token_ids": [good_id, bad_id],
            "p_correct_column": 0,
            "flags": [
                *common, "--runner", "pooling", "--convert", "classify",
                "--hf-overrides", json.dumps({"classifier_from_token": [GOOD, BAD], "method": "no_post_processing"}),
                "--pooler-config",
                json.dumps({"task": "token_classify", "tok_pooling_type": "STEP", "step_tag_id": shepherd_tag_id}),
            ],
        },
    }
    return info


def check(out: Path, urls: dict[str, str]) -> None:
    """POST each expected text to URL/pooling (one batch) and compare with expected.json."""
    import httpx

    expected = json.loads((out / "expected.json").read_text())
    for name, url in urls.items():
        want = expected[name]
        r = httpx.post(url.rstrip("/") + "/pooling", json={"input": want["texts"]}, timeout=120)
        r.raise_for_status()
        got = [d["data"] for d in sorted(r.json()["data"], key=lambda d: d["index"])]
        if name == "qwen":
            r = httpx.post(url.rstrip("/") + "/pooling", json={"messages": want["messages"]}, timeout=120)
            r.raise_for_status()
            got.append(r.json()["data"][0]["data"])
            want = {"probs": [*want["probs"], want["messages_probs"]]}
        shapes = [len(g) for g in got], [len(w) for w in want["probs"]]
        assert shapes[0] == shapes[1], f"{name}: rows per input {shapes[0]}, wanted {shapes[1]}"
        diff = max((abs(a - b) for g, w in zip(got, want["probs"]) for rg, rw in zip(g, w)
                    for a, b in zip(rg, rw)), default=0.0)
        print(f"{name}: rows per input {shapes[0]}, max |vLLM - transformers| = {diff:.2e}")
        assert diff < 1e-4, f"{name}: vLLM and transformers differ by {diff}"


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 1:
        print(json.dumps(build(Path(args[0]))))
    elif args[:1] == ["check"] and len(args) in (3, 4):
        check(Path(args[1]), dict(zip(["qwen", "shepherd"], args[2:])))
    else:
        sys.exit("usage: vllm_prm_build.py OUT | check OUT URL_QWEN [URL_SHEPHERD]")
