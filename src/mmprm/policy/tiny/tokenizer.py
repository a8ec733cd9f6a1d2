"""A byte-level BPE tokenizer for the tiny policy, trained locally in well under a second.

It carries the Qwen2-VL chat special tokens and chat template, so the tiny
model is driven exactly like a real Qwen2-VL checkpoint. Digit runs are separate
pre-tokens (with their leading space) and every number below 100 is one
token (its merges ranked first), so a chart value reads as one token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mmprm.policy.prompt import DEFAULT_SYSTEM
from mmprm.steps import ANSWER_CLOSE, ANSWER_OPEN, STEP_CLOSE, STEP_OPEN

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD]
# Not special: they must survive `skip_special_tokens` decoding.
TAG_TOKENS = [STEP_OPEN, STEP_CLOSE, ANSWER_OPEN, ANSWER_CLOSE]

# Qwen2-VL's template without its default system message (tokens matter here).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in part -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Text the tokenizer always sees, so that one trained on an empty corpus
# still encodes the chat scaffolding compactly.
BASE_CORPUS = ["system\n" + DEFAULT_SYSTEM, "user\n", "assistant\n"]


def train_tokenizer(corpus: Iterable[str] = (), *, vocab_size: int = 768) -> PreTrainedTokenizerFast:
    """Train the tiny policy's tokenizer on `corpus` (e.g. rendered chats of the training data).

    The result has at most `vocab_size` tokens.
    """
    numbers = _number_tokens()
    reserved = 256 + len(SPECIAL_TOKENS) + len(TAG_TOKENS) + len(numbers)
    if vocab_size < reserved:
        raise ValueError(f"vocab_size {vocab_size} is below the {reserved} tokens the tiny tokenizer reserves")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TAG_TOKENS) - len(numbers),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([*BASE_CORPUS, *corpus], trainer=trainer)
    tok = _with_numbers(tok, numbers)
    tok.add_tokens(TAG_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=IM_END, pad_token=PAD, padding_side="left", model_max_length=4096
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _number_tokens() -> list[tuple[str, str]]:
    """The merges that make 0..99, bare and after a space ("Ġ" in byte-level), single tokens."""
    two_digit = [(str(n)[0], str(n)[1]) for n in range(10, 100)]
    spaced = [("Ġ", str(n)) for n in range(100)]
    return two_digit + spaced


def _with_numbers(tok: Tokenizer, numbers: list[tuple[str, str]]) -> Tokenizer:
    """Rank the number merges first, so every number below 100 is one token.

    The byte-level pre-tokenizer keeps digit runs (with one leading space)
    apart from words, so these merges never change how words are split.
    """
    spec = json.loads(tok.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    forced = {a + b for a, b in numbers}
    learned = [m for m in spec["model"]["merges"] if "".join(m) not in forced]
    for a, b in numbers:
        vocab.setdefault(a + b, len(vocab))
    spec["model"]["merges"] = [[a, b] for a, b in numbers] + learned
    return Tokenizer.from_str(json.dumps(spec))
