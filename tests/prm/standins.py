"""Tiny stand-ins for each PRM scheme's model family, built in the test (no downloads).

mmprm, mm-prm and visualprm use the tiny Qwen2-VL; math-shepherd a tiny text
Qwen2 causal LM; qwen2.5-math-prm a tiny Qwen2 with a two-class token head
(the contract of Qwen2.5-Math-PRM's remote code). Published tag and label
tokens are added to the vocabulary, as the real checkpoints have them.
"""

from __future__ import annotations

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForTokenClassification

from mmprm.policy.tiny.model import new_tiny_policy
from mmprm.prm.model import PRMModel, add_tokens, label_ids
from mmprm.prm.schemes import get_scheme


def text_config(tok, **extra) -> Qwen2Config:
    return Qwen2Config(vocab_size=len(tok) + 64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, pad_token_id=tok.pad_token_id,
                       tie_word_embeddings=True, initializer_range=0.2, **extra)


def standin(scheme_name: str, corpus=(), seed: int = 0):
    """(PRMModel, processor) laid out like the published checkpoint of `scheme_name`."""
    scheme = get_scheme(scheme_name)
    vlm, processor = new_tiny_policy(corpus, seed=seed)
    if scheme_name in ("mmprm", "mm-prm", "visualprm"):
        added = add_tokens(vlm, processor.tokenizer, scheme.new_tokens())
        with torch.no_grad():  # a published model's label tokens have their own embeddings
            ids = processor.tokenizer.convert_tokens_to_ids(added)
            g = torch.Generator().manual_seed(seed)
            vlm.get_input_embeddings().weight[ids] = 0.1 * torch.randn(len(ids), vlm.config.text_config.hidden_size,
                                                                       generator=g)
        return PRMModel(vlm, "tokens", label_ids(processor.tokenizer, scheme)), processor
    tok = processor.tokenizer
    add_tokens(vlm, tok, [scheme.tag])
    torch.manual_seed(seed)
    if scheme.readout == "class":
        model = Qwen2ForTokenClassification(text_config(tok, num_labels=2))
        return PRMModel(model, "class"), tok
    model = Qwen2ForCausalLM(text_config(tok))
    return PRMModel(model, "tokens", label_ids(tok, scheme)), tok
