"""Supervised fine-tuning of a chat VLM on (messages, target) pairs, the loss on the target's
tokens only.

The policy (reference solutions) and the generative critic (critiques) are trained this
way; they differ in their examples and in what they measure at a checkpoint. Encoding
(each image's placeholder expanded as the processor would), collation, the loop, and the
resumable checkpoint (weights in `last/`, optimizer and schedule beside them, written then
renamed) are written once here.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm
from transformers import BatchFeature

from mmprm.io import load_image
from mmprm.training import batch_plan, optimizer_and_schedule, refuse_other_settings, warmup_steps

STATE_FILE = "trainer_state.pt"  # optimizer, schedule and step of the last checkpoint


@dataclass
class ChatExample:
    ids: list[int]
    n_prompt: int
    images: list[str]
    weights: list[float] | None = None  # per target token (None: all 1)


@dataclass
class LoopSettings:
    """What the loop needs of a trainer's config."""

    steps: int
    batch_size: int
    lr: float
    warmup: float
    weight_decay: float
    seed: int
    device: str
    save_every: int | None = None
    save_at: tuple[int, ...] = ()
    grad_accum: int = 1  # micro-batches of batch_size per optimizer step


def open_run(config, out_dir: str | Path, what: str) -> Path:
    """The run's folder, with its settings printed and saved as train_config.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{what} training config:", json.dumps(asdict(config)))
    (out / "train_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return out


def encode_chat(messages: list[dict], target: str, processor, *, name: str = "example",
                emphasis: list[tuple[int, int]] = (), weight: float = 1.0) -> ChatExample:
    """Token ids of the chat's generation prompt + `target` + end of turn, with each image's
    placeholder expanded to its patch count. Images are the messages' `{"type": "image"}` parts.
    Target tokens that overlap a character span of `emphasis` weigh `weight` in the loss."""
    tok = processor.tokenizer
    refs = [p["image"] for m in messages if isinstance(m["content"], list) for p in m["content"]
            if p["type"] == "image"]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image_proc = processor.image_processor
    pieces = prompt.split(processor.image_token)
    if len(pieces) - 1 != len(refs):
        raise ValueError(f"{name}: the chat template shows {len(pieces) - 1} of {len(refs)} images")
    text = pieces[0]
    for ref, piece in zip(refs, pieces[1:]):
        w, h = _image_size(ref)
        n = image_proc.get_number_of_image_patches(h, w, {}) // image_proc.merge_size**2
        text += processor.image_token * n + piece
    prompt_ids = tok.encode(text, add_special_tokens=False)
    target_ids = tok.encode(target + tok.eos_token, add_special_tokens=False)
    weights = None
    if emphasis and weight != 1.0:
        spans = tok(target + tok.eos_token, add_special_tokens=False, return_offsets_mapping=True)
        if spans["input_ids"] != target_ids:
            raise ValueError(f"{name}: the tokenizer's offsets do not match its ids; cannot weight the loss")
        weights = [weight if any(a < end and start < b for start, end in emphasis) else 1.0
                   for a, b in spans["offset_mapping"]]
    return ChatExample(prompt_ids + target_ids, len(prompt_ids), refs, weights)


def _image_size(ref: str) -> tuple[int, int]:
    if ref.startswith("data:"):
        return load_image(ref).size
    with Image.open(ref) as image:  # reads the header only
        return image.size


def collate(batch: list[ChatExample], processor, config) -> BatchFeature:
    """Right-padded ids, labels on the target tokens only, and the batch's pixels."""
    width = max(len(ex.ids) for ex in batch)
    pad = processor.tokenizer.pad_token_id
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ex in enumerate(batch):
        ids[row, : len(ex.ids)] = torch.tensor(ex.ids)
        labels[row, ex.n_prompt : len(ex.ids)] = torch.tensor(ex.ids[ex.n_prompt :])
        mask[row, : len(ex.ids)] = 1
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if any(ex.weights is not None for ex in batch):
        weights = torch.zeros((len(batch), width))
        for row, ex in enumerate(batch):
            weights[row, ex.n_prompt : len(ex.ids)] = torch.tensor(ex.weights or [1.0] * (len(ex.ids) - ex.n_prompt))
        inputs["loss_weights"] = weights
    images = [load_image(ref) for ex in batch for ref in ex.images]
    if images:
        pixels = processor.image_processor(images=images, return_tensors="pt")
        inputs.update(pixel_values=pixels["pixel_values"], image_grid_thw=pixels["image_grid_thw"])
        inputs["mm_token_type_ids"] = (ids == config.image_token_id).long()
    return BatchFeature(inputs)


def run_sft(model, processor, examples: list[ChatExample], settings: LoopSettings, out: Path, *,
            state: dict | None, log: dict, save: Callable[[object, object, Path], Path],
            on_save: Callable[[int, Path], dict | None] | None = None, desc: str = "train") -> dict:
    """Train `model` on `examples` for `settings.steps`, continuing from `state` (a killed run's,
    from `saved_state`) if given. `save(model, processor, path)` writes a usable checkpoint: the
    final model to `out`, `checkpoint-STEP/` for each of `save_at`, and `last/` every `save_every`
    steps for resuming. `on_save(step, path)` may measure a saved checkpoint; what it returns
    goes into `log["evals"]`. Returns the log (also written to train_log.json)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = optimizer_and_schedule(params, lr=settings.lr, weight_decay=settings.weight_decay,
                                        warmup=warmup_steps(settings.warmup, settings.steps), total=settings.steps)
    log.update({"examples": len(examples), "parameters": sum(p.numel() for p in params),
                "losses": [], "evals": [], "checkpoints": []})
    start = 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        log.update(state["log"])
        start = state["step"]
        print(f"resuming {out} from step {start}")
    accum = settings.grad_accum
    plan = batch_plan([len(e.ids) for e in examples], settings.batch_size, seed=settings.seed,
                      total=settings.steps * accum)
    model.train()
    t0, window = time.time(), []
    bar = tqdm(range(start, settings.steps), desc=desc, unit="step", initial=start, total=settings.steps)
    for step in bar:
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for micro in plan[step * accum : (step + 1) * accum]:
            batch = collate([examples[i] for i in micro], processor, model.config).to(settings.device)
            loss = _loss(model, batch) / accum
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        window.append(total)
        done = step + 1
        if done % 10 == 0 or done == settings.steps:
            log["losses"].append({"step": done, "loss": sum(window) / len(window), "lr": sched.get_last_lr()[0]})
            bar.set_postfix(loss=f"{log['losses'][-1]['loss']:.3f}")
            window = []
        if done in settings.save_at or done == settings.steps:
            path = save(model, processor, out if done == settings.steps else out / f"checkpoint-{done}")
            log["checkpoints"].append({"step": done, "path": str(path)})
            measured = on_save(done, path) if on_save else None
            if measured:
                log["evals"].append({"step": done, **measured})
            model.train()
        if settings.save_every and done % settings.save_every == 0 and done < settings.steps:
            _checkpoint_state(out, done, model, processor, opt, sched, log, save)
    log["time_s"] = round(time.time() - t0, 1)
    log["final_loss"] = log["losses"][-1]["loss"]
    (out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    (out / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(out / "last", ignore_errors=True)  # the resume copy; the final model is in `out`
    return log


def _loss(model, batch) -> torch.Tensor:
    """The model's own mean cross-entropy on the labelled tokens, or, where the examples weigh
    their tokens, the weighted mean."""
    weights = batch.pop("loss_weights", None)
    if weights is None:
        return model(**batch).loss
    labels = batch.pop("labels")
    logits = model(**batch).logits[:, :-1].float()
    targets, w = labels[:, 1:], weights[:, 1:]
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")
    w = w * (targets != -100)
    return (per_token * w).sum() / w.sum()


def _checkpoint_state(out: Path, step: int, model, processor, opt, sched, log: dict, save) -> None:
    """Weights to out/last/, optimizer and schedule beside them; written then renamed, so a kill leaves the old one."""
    save(model, processor, out / "last")
    tmp = out / (STATE_FILE + ".tmp")
    torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "log": log}, tmp)
    tmp.replace(out / STATE_FILE)


def saved_state(out: Path, config: dict) -> dict | None:
    """The state a killed run left in `out`, if any; it must come from the same settings."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    state = torch.load(path, weights_only=False)
    refuse_other_settings(out, state["log"]["config"], config, f"delete {path} to start afresh")
    return state
