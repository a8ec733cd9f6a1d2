"""The tiny policy: a real Qwen2-VL architecture shrunk to about a million parameters.

Built from `transformers`' own `Qwen2VLForConditionalGeneration`, so every
code path that serves it (generation, the hf backend, the OpenAI-compatible
server) is the one a full-size Qwen2-VL checkpoint takes. Trained from
scratch on synthetic chart problems it becomes a policy whose accuracy can
be dialled by the number of training steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)

from mmprm.policy.tiny.processor import ImageOnlyQwen2VLProcessor, tiny_image_processor
from mmprm.policy.tiny.tokenizer import (
    IM_END,
    IMAGE_PAD,
    PAD,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    train_tokenizer,
)


def tiny_config(
    tokenizer,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    vision_width: int = 64,
    vision_depth: int = 2,
) -> Qwen2VLConfig:
    """A Qwen2-VL config sized for CPU: text hidden 128 x 2 layers, vision width 64 x 2 blocks."""
    head_dim = hidden_size // num_heads
    # mrope splits head_dim/2 rotary frequencies over (time, height, width) in
    # Qwen2-VL's 2:3:3 ratio; the three parts must sum to head_dim/2.
    t = head_dim // 8
    h = (head_dim // 2 - t) // 2
    mrope = [t, h, head_dim // 2 - t - h]
    ids = tokenizer.convert_tokens_to_ids
    vocab = -(-len(tokenizer) // 64) * 64  # a multiple of 64, past the tokenizer
    text = {
        "vocab_size": vocab,
        "hidden_size": hidden_size,
        "intermediate_size": 4 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": max(1, num_heads // 2),
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        "bos_token_id": ids(PAD),
        "eos_token_id": ids(IM_END),
        "pad_token_id": ids(PAD),
    }
    vision = {
        "depth": vision_depth,
        "embed_dim": vision_width,
        "hidden_size": hidden_size,
        "num_heads": 4,
        "mlp_ratio": 4,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    return Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids(IMAGE_PAD),
        video_token_id=ids(VIDEO_PAD),
        vision_start_token_id=ids(VISION_START),
        vision_end_token_id=ids(VISION_END),
        tie_word_embeddings=True,
    )


def new_tiny_policy(
    corpus: Iterable[str] = (), *, vocab_size: int = 768, seed: int = 0, **config_kwargs
) -> tuple[Qwen2VLForConditionalGeneration, ImageOnlyQwen2VLProcessor]:
    """A randomly initialised tiny model and its processor, with a tokenizer trained on `corpus`."""
    tokenizer = train_tokenizer(corpus, vocab_size=vocab_size)
    processor = ImageOnlyQwen2VLProcessor(
        image_processor=tiny_image_processor(), tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )
    config = tiny_config(tokenizer, **config_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[config.text_config.eos_token_id, config.text_config.pad_token_id],
        pad_token_id=config.text_config.pad_token_id,
        do_sample=False,
    )
    return model, processor


def build_tiny_policy(
    out_dir: str | Path, *, corpus: Iterable[str] = (), vocab_size: int = 768, seed: int = 0, **config_kwargs
) -> Path:
    """Train a tokenizer on `corpus`, initialise the tiny model, and save both.

    The folder loads offline with `Qwen2VLForConditionalGeneration.from_pretrained`
    and `ImageOnlyQwen2VLProcessor.from_pretrained` (or `AutoProcessor` where
    torchvision is installed), and with `HFPolicy`.
    """
    model, processor = new_tiny_policy(corpus, vocab_size=vocab_size, seed=seed, **config_kwargs)
    return save_policy(model, processor, out_dir)


def save_policy(model, processor: ImageOnlyQwen2VLProcessor, out_dir: str | Path) -> Path:
    """Save weights (safetensors), generation settings and processor together."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    save_processor(processor, out)
    return out


def save_processor(processor: ImageOnlyQwen2VLProcessor, out_dir: str | Path) -> None:
    """Save under the stock class name, with video settings mirroring the image
    ones, so standard tools (AutoProcessor, vLLM) see a plain Qwen2-VL checkpoint
    wherever torchvision is installed."""
    processor.save_pretrained(out_dir)
    path = Path(out_dir) / "processor_config.json"
    spec = json.loads(path.read_text())
    spec["processor_class"] = "Qwen2VLProcessor"
    image = spec["image_processor"]
    keys = ("size", "patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
    spec["video_processor"] = {"video_processor_type": "Qwen2VLVideoProcessor", **{k: image[k] for k in keys}}
    path.write_text(json.dumps(spec, indent=2) + "\n")


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
