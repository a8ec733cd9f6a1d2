"""The PRM network: any transformers VLM or causal LM, plus a step readout.

The readout turns the hidden state at each step position into one binary
logit (score = its sigmoid):
- `tokens`: logit(+) - logit(-) of the LM head, i.e. P(+) of the two-token
  softmax; the LM head runs on the step positions only, not the whole vocab
  times the whole sequence.
- `value`: a scalar linear head on the hidden state.
- `class`: a published two-class head (Qwen2.5-Math-PRM): logit(1) - logit(0).
A saved PRM is a transformers checkpoint plus `prm_config.json` (and
`value_head.safetensors`), so it loads offline like any model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from mmprm.backbone import freeze_vision, load_backbone, tokenizer_of
from mmprm.prm.schemes import Scheme, get_scheme

PRM_CONFIG = "prm_config.json"
VALUE_HEAD = "value_head.safetensors"


class PRMModel(nn.Module):
    """A backbone and a readout; `forward` returns one binary logit per step position."""

    def __init__(self, backbone: nn.Module, readout: str, label_ids: tuple[int, int] | None = None):
        super().__init__()
        if readout not in ("tokens", "value", "class"):
            raise ValueError(f"readout must be tokens, value or class, got {readout!r}")
        if readout == "tokens" and label_ids is None:
            raise ValueError("a token readout needs the ids of its + and - tokens")
        self.backbone = backbone
        self.readout = readout
        self.label_ids = tuple(label_ids) if label_ids is not None else None
        if readout == "value":
            self.value_head = nn.Linear(_text_config(backbone).hidden_size, 1)
            nn.init.normal_(self.value_head.weight, std=0.02)
            nn.init.zeros_(self.value_head.bias)

    @property
    def _no_split_modules(self):
        """The backbone's layer classes, so FSDP's auto-wrap finds them through this wrapper."""
        return getattr(self.backbone, "_no_split_modules", None)

    def forward(self, input_ids, attention_mask, step_rows, step_cols, **extra) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        if self.readout == "class":
            out = self.backbone(**inputs)
            logits = (out.logits if hasattr(out, "logits") else out[0])[step_rows, step_cols].float()
            return logits[:, 1] - logits[:, 0]
        hidden = step_hidden(self.backbone, inputs, step_rows, step_cols)
        if self.readout == "value":
            return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()
        logits = output_head(self.backbone)(hidden).float()
        pos, neg = self.label_ids
        return logits[:, pos] - logits[:, neg]


def inner_model(backbone: nn.Module) -> nn.Module:
    """The body under the LM head (vision tower included), through a peft wrapper if any."""
    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    return getattr(base, base.base_model_prefix)


def output_head(backbone: nn.Module) -> nn.Module:
    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    return base.get_output_embeddings()


def step_hidden(backbone: nn.Module, inputs: dict, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Final hidden states at (rows, cols): one forward, nothing computed past the body."""
    out = inner_model(backbone)(**inputs, use_cache=False)
    return out.last_hidden_state[rows, cols]


def _text_config(backbone: nn.Module):
    config = backbone.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


# ---- building a PRM from a base model ------------------------------------------

def add_tokens(model: nn.Module, tokenizer, tokens: list[str]) -> list[str]:
    """Make each of `tokens` one token; new ones get the mean embedding of the existing
    vocabulary (a neutral start, unlike a random row). Returns the tokens added."""
    new = [t for t in tokens if len(tokenizer(t, add_special_tokens=False)["input_ids"]) != 1]
    if not new:
        return []
    known = len(tokenizer)
    tokenizer.add_tokens(new, special_tokens=True)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    ids = tokenizer.convert_tokens_to_ids(new)
    with torch.no_grad():
        tables = {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}
        for emb in tables.values():  # once when tied
            emb.weight[ids] = emb.weight[:known].mean(dim=0)
    return new


def build_prm(backbone: nn.Module, processor, scheme: Scheme, head: str, *, vision_frozen: bool = True) -> PRMModel:
    """A PRM from a base model: scheme tokens added (mean-initialised), the readout attached."""
    tok = tokenizer_of(processor)
    if head not in ("token", "value"):
        raise ValueError(f"head must be token or value, got {head!r}")
    if head == "token" and scheme.readout == "class":
        raise ValueError(f"scheme {scheme.name} reads a two-class head; train it with head='value'")
    add_tokens(backbone, tok, scheme.new_tokens() if head == "token" else [t for t in [scheme.tag] if t])
    if vision_frozen:
        freeze_vision(backbone)
    if head == "value":
        return PRMModel(backbone, "value")
    return PRMModel(backbone, "tokens", label_ids(tok, scheme))


def label_ids(tokenizer, scheme: Scheme) -> tuple[int, int]:
    ids = []
    for t in (scheme.positive, scheme.negative):
        enc = tokenizer(t, add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise ValueError(f"scheme {scheme.name}: label {t!r} is {len(enc)} tokens in this tokenizer, not one")
        ids.append(enc[0])
    return ids[0], ids[1]


# ---- loading and saving -------------------------------------------------------------

def save_prm(model: PRMModel, processor, scheme: Scheme, out: str | Path, state_dict: dict | None = None, *,
             label_source: str | None = None, oracle: bool = False) -> Path:
    """Backbone (safetensors, LoRA merged), processor, readout settings and value head, in one folder;
    the label source it learnt from is recorded, and whether that source is an oracle."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backbone = model.backbone
    state = state_dict if state_dict is not None else model.state_dict()
    if hasattr(backbone, "merge_and_unload"):  # LoRA: save plain weights that load without peft
        backbone = backbone.merge_and_unload()
        state = None
    body = None if state is None else {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    backbone.save_pretrained(out, state_dict=body)
    if hasattr(processor, "image_processor") and type(processor).__name__ == "ImageOnlyQwen2VLProcessor":
        from mmprm.policy.tiny.model import save_processor

        save_processor(processor, out)
    else:
        processor.save_pretrained(out)
    if model.readout == "value":
        head = {k[len("value_head."):]: v for k, v in (state_dict or model.state_dict()).items()
                if k.startswith("value_head.")}
        save_file({k: v.detach().contiguous().cpu() for k, v in head.items()}, str(out / VALUE_HEAD))
    spec = {"format": "mmprm-prm", "version": 1, "scheme": scheme.name, "readout": model.readout,
            "label_ids": list(model.label_ids) if model.label_ids else None,
            "label_source": label_source, "oracle_labels": oracle}
    (out / PRM_CONFIG).write_text(json.dumps(spec, indent=2) + "\n")
    return out


def is_prm_folder(path: str | Path) -> bool:
    return (Path(path) / PRM_CONFIG).is_file()


def load_prm_model(path: str | Path, *, trust_remote_code: bool = False, dtype=None) -> tuple[PRMModel, object, Scheme]:
    """A PRM saved by `save_prm`, offline."""
    from safetensors.torch import load_file

    path = Path(path)
    if not is_prm_folder(path):
        raise FileNotFoundError(f"{path} is not an mmprm PRM folder (no {PRM_CONFIG})")
    try:
        spec = json.loads((path / PRM_CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path / PRM_CONFIG}: invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    backbone, processor = load_backbone(path, trust_remote_code=trust_remote_code, dtype=dtype)
    model = PRMModel(backbone, spec["readout"], spec.get("label_ids"))
    if spec["readout"] == "value":
        model.value_head.load_state_dict(load_file(str(path / VALUE_HEAD)))
    return model.eval(), processor, get_scheme(spec["scheme"])
