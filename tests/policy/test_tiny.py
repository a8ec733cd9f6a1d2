"""The tiny policy: its tokenizer, processor and model, saved and loaded offline."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from transformers import Qwen2VLForConditionalGeneration

from mmprm.policy.prompt import build_messages
from mmprm.policy.tiny.model import build_tiny_policy, count_parameters
from mmprm.policy.tiny.processor import ImageOnlyQwen2VLProcessor
from mmprm.policy.tiny.tokenizer import train_tokenizer
from mmprm.types import Problem

CORPUS = [
    "user\nIn the bar chart, what is A + B - 3?",
    (
        "assistant\n<step>bar A is 7</step>\n<step>bar B is 12</step>\n<step>7 + 12 = 19</step>\n"
        "<step>19 - 3 = 16</step>\n<answer>16</answer>"
    ),
]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS * 20)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return build_tiny_policy(tmp_path_factory.mktemp("tiny"), corpus=CORPUS * 20)


def test_tokenizer_round_trips_any_text(tok):
    for text in [*CORPUS, "Ünïcödé → ∑ 3.5×10⁻²\n\ttabs", "<step>a</step><answer>B</answer>", "x12y 123 -4"]:
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text


def test_numbers_below_100_are_single_tokens(tok):
    for n in range(100):
        assert len(tok.encode(str(n), add_special_tokens=False)) == 1, n
        assert len(tok.encode(f" {n}", add_special_tokens=False)) == 1, n
    assert len(tok.encode("100", add_special_tokens=False)) == 2


def test_chat_tokens_are_single_and_tags_survive_skipping_specials(tok):
    for t in ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|endoftext|>",
              "<step>", "</step>", "<answer>", "</answer>"]:
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    ids = tok.encode("<|im_start|>assistant\n<step>x</step><|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "assistant\n<step>x</step>"


def test_prompt_and_completion_tokenize_the_same_apart_and_together(tok):
    """Training tokenizes prompt and target apart; generation continues the joined text."""
    messages = [{"role": "user", "content": [{"type": "image", "image": "/a.png"}, {"type": "text", "text": "A + B?"}]}]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    target = CORPUS[1].removeprefix("assistant\n")
    full = tok.apply_chat_template([*messages, {"role": "assistant", "content": target}], tokenize=False)
    assert full == prompt + target + "<|im_end|>\n"
    def enc(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False)

    assert enc(full) == enc(prompt) + enc(target + "<|im_end|>") + enc("\n")


def test_chat_template_matches_qwen2_vl_layout(tok):
    problem = Problem(id="p", question="What is A?", answer="3", images=["/a.png"])
    text = tok.apply_chat_template(build_messages(problem, ["bar A is 3"]), tokenize=False)
    assert text.startswith("<|im_start|>system\nSolve the problem")
    assert "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is A?<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n<step>bar A is 3</step>\n<|im_end|>\n")


def test_saved_policy_loads_offline_with_the_stock_model_class(policy_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = Qwen2VLForConditionalGeneration.from_pretrained(policy_dir)
    processor = ImageOnlyQwen2VLProcessor.from_pretrained(policy_dir)
    assert 500_000 < count_parameters(model) < 5_000_000
    assert (policy_dir / "model.safetensors").is_file()
    spec = json.loads((policy_dir / "processor_config.json").read_text())
    assert spec["processor_class"] == "Qwen2VLProcessor"  # what AutoProcessor and vLLM look up
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "A?"}]}],
        tokenize=False, add_generation_prompt=True,
    )
    inputs = processor(text=[text], images=[Image.new("RGB", (112, 112), "red")], return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 16
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
    with torch.no_grad():
        a = model(**inputs).logits
        b = Qwen2VLForConditionalGeneration.from_pretrained(policy_dir)(**inputs).logits
    assert torch.equal(a, b)


def test_large_images_are_capped_at_16_tokens(policy_dir):
    processor = ImageOnlyQwen2VLProcessor.from_pretrained(policy_dir)
    grid = processor.image_processor(images=[Image.new("RGB", (640, 480))], return_tensors="pt")["image_grid_thw"]
    assert int(grid.prod()) // 4 <= 16
