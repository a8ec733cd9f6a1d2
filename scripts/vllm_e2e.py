"""The Python half of scripts/vllm_e2e.sh, run with the project's virtualenv.

`build DIR`: a tiny text Qwen2 causal LM with the tiny policy's tokenizer (so
chat template and step tags are the real ones) and a few text-only problems.
`check URL MODEL DIR`: check what `mmprm generate` wrote, then drive vLLM
through OpenAIPolicy directly: prefix continuation (chat), raw completions,
stop strings, and prompt token counts against the same model run by HFPolicy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PROBLEMS = [
    {"id": "add", "question": "What is 2 + 3?", "answer": "5"},
    {"id": "mul", "question": "What is 4 times 6?", "answer": "24"},
    {"id": "sub", "question": "What is 10 - 7?", "answer": "3"},
]
N = 4


def build(out: Path) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from mmprm.policy.tiny.tokenizer import IM_END, PAD, train_tokenizer

    tok = train_tokenizer([p["question"] for p in PROBLEMS])
    ids = tok.convert_tokens_to_ids
    config = Qwen2Config(
        vocab_size=-(-len(tok) // 64) * 64,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 64: a size vLLM's CPU attention supports
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=ids(PAD),
        eos_token_id=ids(IM_END),
        pad_token_id=ids(PAD),
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=ids(IM_END), pad_token_id=ids(PAD))
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    with open(out / "problems.jsonl", "w") as f:
        f.writelines(json.dumps(p) + "\n" for p in PROBLEMS)
    print(f"tiny text Qwen2 ({sum(p.numel() for p in model.parameters()):,} parameters) -> {out / 'model'}")


def check(url: str, model: str, work: Path) -> None:
    from mmprm.policy.base import Request, SamplingParams
    from mmprm.policy.hf import HFPolicy
    from mmprm.policy.openai import OpenAIPolicy
    from mmprm.types import Problem

    rows = [json.loads(line) for line in (work / "samples.jsonl").read_text().splitlines()]
    per_problem = {p["id"]: sum(r["problem_id"] == p["id"] for r in rows) for p in PROBLEMS}
    assert per_problem == {p["id"]: N for p in PROBLEMS}, f"mmprm generate wrote {per_problem}, wanted {N} each"
    assert all(r["prompt_tokens"] > 0 and 0 < r["completion_tokens"] <= 32 for r in rows), "bad token counts"
    print(f"ok: mmprm generate wrote {len(rows)} graded samples")

    problems = [Problem.from_dict(p) for p in PROBLEMS]
    local = HFPolicy(work / "model")
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=16)
    requests = [Request(problems[0]), Request(problems[0], ["2 + 3 = 5."]), Request(problems[1])]
    chat = OpenAIPolicy(url, model, max_retries=2, timeout=60)
    try:
        served = chat.sample_batch(requests, greedy)
        mine = local.sample_batch(requests, greedy)
        counts = [(s[0].prompt_tokens, m[0].prompt_tokens) for s, m in zip(served, mine)]
        assert all(a == b for a, b in counts), f"vLLM and HFPolicy prompt tokens differ: {counts}"
        assert served[1][0].prompt_tokens > served[0][0].prompt_tokens, "the prefix was not sent"
        print(f"ok: chat prompts (with and without a prefix) match HFPolicy token for token: {counts}")
        same = sum(s[0].text == m[0].text for s, m in zip(served, mine))
        print(f"info: greedy text equal to HFPolicy's in {same}/{len(requests)} "
              "(not asserted: float kernels may round differently)")
        assert chat.sample_batch(requests, greedy) == served, "greedy decoding is not repeatable"
        print("ok: greedy decoding is repeatable")
    finally:
        chat.close()

    raw = OpenAIPolicy(url, model, max_retries=2, timeout=60, mode="completions")
    try:
        params = SamplingParams(n=N, temperature=1.0, top_k=20, max_tokens=24, stop=["</step>"], seed=1)
        outs = raw.sample_batch([Request(p, ["First step."]) for p in problems], params)
        assert [len(o) for o in outs] == [N] * len(problems)
        assert all("</step>" not in c.text for o in outs for c in o), "a stop string was left in the text"
        assert all(0 < c.completion_tokens <= 24 for o in outs for c in o), "per-sample token counts are off"
        cut = sum(not c.finished for o in outs for c in o)
        print(f"ok: completions mode, n={N}, stop=</step>: {len(problems) * N} samples, {cut} cut before the end")
    finally:
        raw.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"] and len(sys.argv) == 3:
        build(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["check"] and len(sys.argv) == 5:
        check(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    else:
        sys.exit("usage: vllm_e2e.py build DIR | check URL MODEL DIR")
