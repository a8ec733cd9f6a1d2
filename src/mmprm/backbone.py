"""Loading a local transformers checkpoint: the one loader of every stage.

The policy backend, the trainers, the PRM loader and the likelihood
scorer all read checkpoints through `load_backbone`, so which classes a
model type maps to, and how its processor is built, is decided once; the
trainers' shared surgery (a frozen vision tower, LoRA adapters) is here too.
Everything is offline: a path that is not a checkpoint folder is an error
naming the path, never a request to a model hub.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# Model types whose stock processor would import torchvision for its video half.
QWEN_VL = ("qwen2_vl", "qwen2_5_vl")


def load_backbone(path: str | Path, *, trust_remote_code: bool = False, dtype=None, kind: str = "auto"):
    """(model, processor) of a local checkpoint: image-text-to-text, causal LM, or (kind='class') a
    token-classification model. Refuses checkpoints that need their own code unless trusted."""
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoModelForTokenClassification,
        AutoProcessor,
        AutoTokenizer,
    )

    if not Path(path, "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a model folder (no config.json there)")
    if not any(Path(path).glob("*.safetensors")) and not any(Path(path).glob("pytorch_model*.bin")):
        raise FileNotFoundError(f"{path} has no weights (no *.safetensors or pytorch_model*.bin)")
    path = str(path)
    remote = {"trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(path, **remote)
    except ValueError as e:
        if "trust_remote_code" in str(e) and not trust_remote_code:
            raise ValueError(f"{path} needs its own model code; pass --trust-remote-code if you trust it") from None
        raise
    if getattr(config, "auto_map", None) and not trust_remote_code:
        raise ValueError(f"{path} ships its own model code (auto_map); pass --trust-remote-code if you trust it")
    dtype = dtype or torch.float32
    if kind == "class":
        cls = AutoModel if getattr(config, "auto_map", None) else AutoModelForTokenClassification
        model = cls.from_pretrained(path, dtype=dtype, **remote)
        return model, AutoTokenizer.from_pretrained(path, **remote)
    if hasattr(config, "vision_config"):
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, **remote)
        if config.model_type in QWEN_VL:
            from mmprm.policy.tiny.processor import ImageOnlyQwen2VLProcessor

            return model, ImageOnlyQwen2VLProcessor.from_pretrained(path)
        return model, AutoProcessor.from_pretrained(path, **remote)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **remote)
    tok = AutoTokenizer.from_pretrained(path, **remote)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok



def tokenizer_of(processor):
    """The tokenizer inside a multimodal processor, or the tokenizer itself."""
    return getattr(processor, "tokenizer", processor)


def is_multimodal(processor) -> bool:
    return hasattr(processor, "image_processor")


_VISION = ("visual", "vision_tower", "vision_model", "vision_encoder")


def freeze_vision(model: nn.Module) -> int:
    """Freeze the vision tower (the usual PRM recipe: it already reads figures). Returns frozen parameter count."""
    frozen = 0
    for owner in (model, getattr(model, model.base_model_prefix, None)):
        for name in _VISION:
            tower = getattr(owner, name, None) if owner is not None else None
            if isinstance(tower, nn.Module):
                for p in tower.parameters():
                    if p.requires_grad:
                        p.requires_grad_(False)
                        frozen += p.numel()
    return frozen


def apply_lora(model: nn.Module, *, r: int = 16, alpha: int = 32, dropout: float = 0.05,
               targets: list[str] | None = None) -> nn.Module:
    """Wrap the language model's attention and MLP projections with LoRA adapters (needs peft)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ImportError("LoRA needs peft: pip install 'mmprm[lora]'") from None
    targets = targets or ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    # only the language model's layers: the vision tower keeps its own weights
    pattern = r"^(?!.*(" + "|".join(_VISION) + r")).*\.(" + "|".join(targets) + r")$"
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern)
    return get_peft_model(model, config)
