"""`mmprm critic train`: fine-tune a chat VLM into a generative critic on the critiques
`mmprm critic build-data` wrote.

Each example is the critic's prompt (`critic.prompt`: instructions, figures, question,
numbered steps) and the teacher's critique as the answer; the loss is on the critique's
tokens only. The vision tower is frozen by default (the policy already reads figures),
LoRA is an option, and a killed run resumes from its last `save_every` checkpoint: the
loop is the policy trainer's (`mmprm.sft`). The saved folder is a plain checkpoint with
`critic_config.json` (its layout), so `HFCritic`, `--critic hf:PATH` and `--prm critic:PATH`
load it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import torch

from mmprm.backbone import apply_lora, freeze_vision
from mmprm.critic.config import CriticTrainConfig
from mmprm.critic.critique import LAYOUTS, VERDICT_WORDS, parse, verdict_offsets
from mmprm.critic.model import CONFIG_FILE
from mmprm.critic.prompt import critic_messages
from mmprm.io import RecordError, Rejected, RejectLog, absolute_images, read_records
from mmprm.sft import LoopSettings, encode_chat, open_run, run_sft, saved_state
from mmprm.training import torch_threads
from mmprm.types import Problem

LORA_STATE = "lora_state.pt"


def load_critiques(path: str | Path, rejects: RejectLog | None = None) -> list[tuple[Problem, list[str], str, str]]:
    """(problem, steps, critique text, layout) of each usable record; a record that is not one,
    or whose critique does not parse as a verdict on its steps, is rejected naming its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no critiques at {path} (write them with `mmprm critic build-data`)")
    out = []
    for _, record in read_records(path, _critique_record):
        if isinstance(record, Rejected):
            if rejects is not None:
                rejects.add(record)
            continue
        problem, steps, text, layout = record
        problem.images = absolute_images(problem.images, path.parent)
        out.append((problem, steps, text, layout))
    return out


def _critique_record(d: object) -> tuple[Problem, list[str], str, str]:
    problem = Problem.from_dict({"id": "critique", **d} if isinstance(d, dict) else d)
    steps, text, layout = d.get("steps"), d.get("critique"), d.get("layout")  # type: ignore[union-attr]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise RecordError("'steps' must be a non-empty list of strings")
    if not isinstance(text, str):
        raise RecordError("'critique' must be the critique's text")
    if layout not in LAYOUTS:
        raise RecordError(f"'layout' must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    parsed = parse(text, len(steps), layout)
    if parsed.critique is None:
        raise RecordError(f"the critique is no verdict on its {len(steps)} steps: {parsed.reason}")
    return problem, steps, text, layout


def verdict_spans(text: str, layout: str) -> list[tuple[int, int]]:
    """The characters of each verdict word: the tokens a critic's P(correct) is read from."""
    words = VERDICT_WORDS[layout]
    spans = []
    for at in verdict_offsets(text, layout):
        word = next(w for w in sorted(words, key=len, reverse=True) if text.lower().startswith(w, at))
        spans.append((at, at + len(word)))
    return spans


def train_critic(cfg: CriticTrainConfig, out_dir: str | Path) -> dict:
    out = open_run(cfg, out_dir, "critic")
    with torch_threads(cfg.num_threads):
        return _train(cfg, out)


def _train(cfg: CriticTrainConfig, out: Path) -> dict:
    from mmprm.policy.hf import HFPolicy
    from mmprm.policy.tiny.model import save_policy

    rejects = RejectLog(out / "train_critiques.jsonl", echo=print)
    records = load_critiques(cfg.data, rejects)
    rejects.close()
    if not records:
        raise ValueError(f"{cfg.data} holds no usable critiques")
    layouts = {layout for *_, layout in records}
    if len(layouts) > 1:
        raise ValueError(f"{cfg.data} mixes critique layouts {sorted(layouts)}; a critic learns one")
    (layout,) = layouts
    state = saved_state(out, asdict(cfg))
    resume_full = state is not None and not cfg.lora  # a LoRA run's resume copy holds its adapters alone
    policy = HFPolicy(out / "last" if resume_full else cfg.init, device=cfg.device)
    if not policy.multimodal:
        raise ValueError(f"{cfg.init} is text-only; a critic of figure problems starts from an image-text model")
    model, processor = policy.model, policy.processor
    if cfg.freeze_vision:
        freeze_vision(model)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora:
        model = apply_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha)
        if state is not None:
            model.load_state_dict(torch.load(out / "last" / LORA_STATE, weights_only=True))
    examples = [encode_chat(critic_messages(problem, steps, layout), text, processor, name=f"critique {i + 1}",
                            emphasis=verdict_spans(text, layout), weight=cfg.verdict_weight)
                for i, (problem, steps, text, _) in enumerate(records)]

    def save(model, processor, path: Path) -> Path:
        path = Path(path)
        if hasattr(model, "merge_and_unload"):  # LoRA
            if path == out / "last":  # to resume: the adapters, with the base they sit on
                path.mkdir(parents=True, exist_ok=True)
                torch.save(model.state_dict(), path / LORA_STATE)
                return path
            model = copy.deepcopy(model).merge_and_unload()  # plain weights that load without peft
        save_policy(model, processor, path)
        (path / CONFIG_FILE).write_text(json.dumps({"layout": layout, "trained_from": cfg.init}) + "\n")
        return path

    settings = LoopSettings(cfg.steps, cfg.batch_size, cfg.lr, cfg.warmup, cfg.weight_decay, cfg.seed, cfg.device,
                            cfg.save_every, grad_accum=cfg.grad_accum)
    log = run_sft(model, processor, examples, settings, out, state=state,
                  log={"config": asdict(cfg), "layout": layout, "rejected": rejects.count}, save=save,
                  desc="critic train")
    print(f"trained a {layout} critic on {len(examples)} critiques in {log['time_s']} s: "
          f"loss {log['final_loss']:.3f}; saved to {out}")
    return log
