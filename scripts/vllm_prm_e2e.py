"""The Python half of scripts/vllm_prm_e2e.sh: published-PRM layouts on a real vLLM.

    python scripts/vllm_prm_e2e.py build OUT
    python scripts/vllm_prm_e2e.py check OUT qwen|shepherd URL MODEL

`build` makes two randomly initialised models, each with the tiny policy's
tokenizer plus its step tag as one added token, and prints, as one JSON line,
the vLLM server flags each needs:

(a) OUT/qwen-prm: Qwen2.5-Math-PRM's layout. config.architectures is
    ["Qwen2ForProcessRewardModel"] (vLLM's class); weights are `model.*` (a
    Qwen2Model) and a 2-layer head `score.0.{weight,bias}`,
    `score.2.{weight,bias}` (Linear(h, h), ReLU, Linear(h, 2)). Step tag
    `<extra_0>`; P(correct) is class 1.
(b) OUT/shepherd-prm: Math-Shepherd's layout, a plain Qwen2ForCausalLM. Step
    tag `ки`; P(correct) = softmax over the `+` and `-` logits, the `+` column.

`check` scores candidates through mmprm's `vllm:` PRM client and compares
them with the same model run by transformers on the same layout (for
Math-Shepherd, also with mmprm's own `math-shepherd:PATH` scorer).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

QWEN_TAG = "<extra_0>"
SHEPHERD_TAG = "ки"
GOOD, BAD = "+", "-"
CORPUS = ["Step 1: 2 + 3 = 5.", "Step 2: so the answer is 5.", "What is 4 times 6?", "10 - 7 = 3"]
QUESTIONS = ["What is 2 + 3?", "What is 4 times 6?"]
CANDIDATES = [["2 + 3 = 5.", "So the answer is 5."], ["2 + 3 = 6."], ["4 times 6 is 24.", "10 - 7 = 3", "Done: 24."]]


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

    tok = train_tokenizer(CORPUS)  # (a) Qwen2.5-Math-PRM's layout
    tok.add_tokens([QWEN_TAG], special_tokens=True)
    qwen_tag_id = tok.convert_tokens_to_ids(QWEN_TAG)
    model = _prm_class()(_config(tok, num_labels=2))
    with torch.no_grad():  # a head wide enough that the probabilities spread over (0, 1)
        for layer in (model.score[0], model.score[2]):
            layer.weight.normal_(0.0, 1.0 / layer.in_features**0.5)
            layer.bias.normal_(0.0, 0.1)
    model.save_pretrained(out / "qwen-prm")
    tok.save_pretrained(out / "qwen-prm")
    _reload(out / "qwen-prm", QWEN_TAG, qwen_tag_id)

    tok = train_tokenizer(CORPUS)  # (b) Math-Shepherd's layout
    tok.add_tokens([SHEPHERD_TAG])
    ids_of = tok.convert_tokens_to_ids
    shepherd_tag_id, good_id, bad_id = ids_of(SHEPHERD_TAG), ids_of(GOOD), ids_of(BAD)
    assert len({shepherd_tag_id, good_id, bad_id}) == 3 and tok.unk_token_id not in (good_id, bad_id)
    model = Qwen2ForCausalLM(_config(tok, tie_word_embeddings=False))
    with torch.no_grad():  # wider `+`/`-` rows so P(+) spreads
        model.lm_head.weight[[good_id, bad_id]] *= 5
    model.save_pretrained(out / "shepherd-prm")
    tok.save_pretrained(out / "shepherd-prm")
    _reload(out / "shepherd-prm", SHEPHERD_TAG, shepherd_tag_id)

    return {
        "qwen": ["--model", str(out / "qwen-prm"), "--runner", "pooling",
                 "--pooler-config", json.dumps({"step_tag_id": qwen_tag_id})],
        "shepherd": ["--model", str(out / "shepherd-prm"), "--runner", "pooling", "--convert", "classify",
                     "--hf-overrides", json.dumps({"classifier_from_token": [GOOD, BAD],
                                                   "method": "no_post_processing"}),
                     "--pooler-config", json.dumps({"task": "token_classify", "tok_pooling_type": "STEP",
                                                    "step_tag_id": shepherd_tag_id})],
    }


def reference(out: Path, which: str, items) -> list[list[list[float]]]:
    """P(correct) per step from transformers, on the layout mmprm sends (mmprm.prm.formats)."""
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from mmprm.prm.formats import math_shepherd_text, qwen_prm_messages

    folder = out / ("qwen-prm" if which == "qwen" else "shepherd-prm")
    tok = AutoTokenizer.from_pretrained(folder)  # as vLLM loads it
    if which == "qwen":
        model, tag = _prm_class().from_pretrained(folder).eval(), tok.convert_tokens_to_ids(QWEN_TAG)
    else:
        model, tag = Qwen2ForCausalLM.from_pretrained(folder).eval(), tok.convert_tokens_to_ids(SHEPHERD_TAG)
        good, bad = tok.convert_tokens_to_ids([GOOD, BAD])
    scores = []
    with torch.no_grad():
        for problem, candidates in items:
            per = []
            for steps in candidates:
                if which == "qwen":
                    text = tok.apply_chat_template(qwen_prm_messages(problem, steps), tokenize=False,
                                                   add_generation_prompt=False)
                    ids = tok(text, return_tensors="pt").input_ids
                    probs = model(ids)[0].softmax(-1)[:, 1]
                else:
                    ids = tok(math_shepherd_text(problem, steps), return_tensors="pt").input_ids
                    probs = model(ids).logits[0][:, [good, bad]].softmax(-1)[:, 0]
                per.append(probs[ids[0] == tag].tolist())
            scores.append(per)
    return scores


def check(out: Path, which: str, url: str, model: str) -> None:
    from mmprm.prm.load import load_prm
    from mmprm.types import Problem

    items = [(Problem(f"p{k}", q, "0"), CANDIDATES) for k, q in enumerate(QUESTIONS)]
    spec = f"vllm:{url}#{model}" if which == "qwen" else f"vllm:math-shepherd:{url}#{model}"
    client = load_prm(spec)
    try:
        got = client.score_many(items)
    finally:
        client.close()
    want = {"transformers": reference(out, which, items)}
    if which == "shepherd":
        local = load_prm(f"math-shepherd:{out / 'shepherd-prm'}")
        want["mmprm math-shepherd:PATH"] = local.score_many(items)
    flat = [x for per in got for steps in per for x in steps]
    assert len(flat) == sum(len(c) for _, cands in items for c in cands), "a step without a score"
    assert max(flat) - min(flat) > 1e-3, "the scores do not differ: the comparison would mean nothing"
    for name, ref in want.items():
        diff = max(abs(a - b) for per, rper in zip(got, ref) for s, r in zip(per, rper) for a, b in zip(s, r))
        print(f"{which}: {spec} against {name}: {len(flat)} step scores, max difference {diff:.2e}")
        assert diff < 1e-4, f"{which}: vLLM through mmprm and {name} differ by {diff}"


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["build"] and len(args) == 2:
        print(json.dumps(build(Path(args[1]))))
    elif args[:1] == ["check"] and len(args) == 5 and args[2] in ("qwen", "shepherd"):
        check(Path(args[1]), args[2], args[3], args[4])
    else:
        sys.exit("usage: vllm_prm_e2e.py build OUT | check OUT qwen|shepherd URL MODEL")
