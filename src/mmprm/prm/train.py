"""Train a PRM on step labels: loss at the step positions only, on one device or many.

Built on accelerate, so the same code runs on a CPU, on one GPU, and under
`accelerate launch --config_file recipes/accelerate/<deepspeed-zero2|deepspeed-zero3|fsdp>.yaml`.
The targets come from a named label source (mmprm.labels; MM-PRM's MC
value by default). The default loss is the soft-label cross-entropy over
[+, -] (BCE against the target); `loss="hard"` uses target > 0. Batches come from a plan that is a
function of (seed, step) only, so a killed run resumes from its last
checkpoint (safetensors weights, optimizer, schedule, RNG) to the same
weights an uninterrupted run reaches. Length bucketing (on by default)
batches examples of similar length together: less padding to compute.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from mmprm.backbone import apply_lora, load_backbone
from mmprm.grading import RuleGrader
from mmprm.labels import LabelledPath, get_source, load_labelled
from mmprm.labels.negatives import answer_negatives
from mmprm.prm.config import PRMTrainConfig
from mmprm.prm.formats import collate, encode
from mmprm.prm.metrics import auroc
from mmprm.prm.model import PRMModel, build_prm, save_prm
from mmprm.prm.schemes import get_scheme
from mmprm.training import (
    batch_plan,
    optimizer_and_schedule,
    refuse_other_settings,
    steps_for_epochs,
    torch_threads,
    warmup_steps,
)

CHECKPOINTS = "checkpoints"
STATE = "trainer_state.json"


@dataclass
class Example:
    """An encoded training path (the formatter's row) with one target (or None) per step."""

    input_ids: list[int]
    positions: list[int]
    images: list[str]
    targets: list[float | None]


def train_prm(cfg: PRMTrainConfig, out: str | Path, *, model: PRMModel | None = None, processor=None,
              resume: bool = True) -> dict:
    """Train a PRM as `cfg` says and save it to `out`; returns the log.

    The network is `cfg.base` (a local VLM or causal LM folder) with a step head,
    unless `model` (a PRMModel, with its `processor`) is given, as TRL-style
    trainers take one. A rerun with the same settings resumes a killed run, or
    returns the log of a finished one; `resume=False` starts afresh.
    Build `cfg` with `PRMTrainConfig(...)` or `PRMTrainConfig.from_recipe(...)`.
    """
    if (model is None) != (processor is None):
        raise ValueError("give model and processor together")
    if model is None and not cfg.base:
        raise ValueError("no base model: set base (a local checkpoint folder) or pass a model")
    if cfg.data is None and cfg.samples is None:
        raise ValueError("no training data: set data (paths.jsonl) or samples and problems")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    finished = _finished(out, cfg)
    if resume and finished is not None:
        print(f"{out} already holds a PRM trained with these settings")
        return finished
    if not resume:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    elif _latest_checkpoint(out) is not None:
        refuse_other_settings(out, _saved_config(out), asdict(cfg), f"delete {out / CHECKPOINTS} to start afresh")
    with torch_threads(cfg.num_threads):
        return _train(cfg, out, model, processor)


def _train(cfg: PRMTrainConfig, out: Path, model: PRMModel | None, processor) -> dict:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    acc = Accelerator(gradient_accumulation_steps=cfg.grad_accum)
    if acc.is_main_process:
        print("prm training config:", json.dumps(asdict(cfg)))
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    set_seed(cfg.seed)
    scheme = get_scheme(cfg.scheme)
    if model is None:
        backbone, processor = load_backbone(cfg.base)
        model = build_prm(backbone, processor, scheme, cfg.head, vision_frozen=cfg.freeze_vision)
    if cfg.gradient_checkpointing:
        model.backbone.gradient_checkpointing_enable()
    if cfg.lora:
        model.backbone = apply_lora(model.backbone, r=cfg.lora_r, alpha=cfg.lora_alpha)
    train_set, dropped = _examples(cfg, processor, cfg.data, cfg.samples, cfg.problems,
                                   negatives=cfg.answer_negatives)
    eval_set, _ = _examples(cfg, processor, cfg.eval_data, cfg.eval_samples, cfg.eval_problems)
    if not train_set:
        raise ValueError("no training examples (every path was empty, unlabelled or too long)")

    per_step = acc.num_processes * cfg.grad_accum
    batches = (cfg.max_steps * per_step if cfg.max_steps is not None
               else steps_for_epochs(len(train_set), cfg.batch_size, cfg.epochs))
    plan = batch_plan([len(e.input_ids) for e in train_set], cfg.batch_size, seed=cfg.seed, total=batches,
                      bucket=cfg.bucket)
    total_steps = math.ceil(len(plan) / per_step)
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=plan,
                                         collate_fn=partial(collate_examples, processor=processor))
    opt, sched = optimizer_and_schedule([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                        weight_decay=cfg.weight_decay,
                                        warmup=warmup_steps(cfg.warmup_ratio, total_steps), total=total_steps)
    if acc.state.deepspeed_plugin is not None:
        acc.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.batch_size
    model, opt, loader = acc.prepare(model, opt, loader)
    acc.register_for_checkpointing(sched)

    log = {"config": asdict(cfg), "examples": len(train_set), "eval_examples": len(eval_set),
           "dropped_too_long": dropped, "steps": total_steps, "losses": [], "evals": []}
    step, tokens, padded, seconds, window = 0, 0, 0, 0.0, []
    ckpt = _latest_checkpoint(out)
    if ckpt is not None:
        acc.load_state(str(ckpt))
        saved = json.loads((ckpt / STATE).read_text())
        step, log, window, seconds = saved["step"], saved["log"], saved["window"], saved["seconds"]
        if acc.is_main_process:  # the counts are totals over processes
            tokens, padded = saved["tokens"], saved["padded"]
        loader = acc.skip_first_batches(loader, step * cfg.grad_accum)
        print(f"resuming {out} from step {step}")
    model.train()
    t0 = time.time()
    bar = tqdm(total=total_steps, initial=step, desc="prm train", unit="step", disable=not acc.is_main_process)
    for batch in loader:
        targets, supervised = batch.pop("targets"), batch.pop("supervised")
        tokens += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
        with acc.accumulate(model):
            loss = step_loss(model(**batch), targets, supervised, cfg.loss)
            acc.backward(loss)
            if acc.sync_gradients and cfg.max_grad_norm:
                acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
        window.append(loss.item())
        if not acc.sync_gradients:
            continue
        sched.step()
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == total_steps:
            mean = _reduce(acc, sum(window) / len(window), "mean")
            log["losses"].append({"step": step, "loss": mean, "lr": sched.get_last_lr()[0]})
            bar.set_postfix(loss=f"{log['losses'][-1]['loss']:.4f}")
            window = []
        if eval_set and (step == total_steps or (cfg.eval_every and step % cfg.eval_every == 0)):
            log["evals"].append({"step": step, **evaluate(model, eval_set, processor, cfg)})
            if acc.is_main_process:
                tqdm.write(f"step {step}: " + json.dumps(log["evals"][-1]))
            model.train()
        if step % cfg.save_every == 0 and step < total_steps:
            _checkpoint(acc, out, {"step": step, "log": log, "seconds": seconds + time.time() - t0,
                                   "window": _reduce(acc, window, "mean"), "tokens": _reduce(acc, tokens, "sum"),
                                   "padded": _reduce(acc, padded, "sum")})
        if step >= total_steps:
            break
    bar.close()
    seconds += time.time() - t0
    tokens, padded = _reduce(acc, tokens, "sum"), _reduce(acc, padded, "sum")
    log.update(time_s=round(seconds, 1), tokens=tokens, padding=round(1 - tokens / max(1, padded), 4),
               tokens_per_s=round(tokens / max(seconds, 1e-9), 1), final_loss=log["losses"][-1]["loss"],
               finished=True)
    acc.wait_for_everyone()
    state = acc.get_state_dict(model)
    if acc.is_main_process:
        save_prm(acc.unwrap_model(model), processor, scheme, out, state_dict=state,
                 label_source=cfg.label_source_name, oracle=get_source(cfg.labels).oracle)
        (out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
        print(f"trained {total_steps} steps in {log['time_s']} s ({log['tokens_per_s']:.0f} tokens/s, "
              f"{log['padding']:.1%} padding): loss {log['final_loss']:.4f}; saved to {out}")
    return log


def _filter_labels(paths: list[LabelledPath], cfg: PRMTrainConfig) -> list[LabelledPath]:
    """The labels the judge model (`cfg.label_filter`) disagrees with most, masked."""
    from mmprm.labels.agreement import mask_disagreements
    from mmprm.prm.likelihood import LikelihoodPRM

    judge = LikelihoodPRM.from_path(cfg.label_filter)
    try:
        kept, agreement = mask_disagreements(paths, judge, cfg.label_filter_share)
    finally:
        judge.close()
    print(f"label filter ({cfg.label_filter} likelihood): {json.dumps(agreement.to_dict())}")
    return kept


def _examples(cfg: PRMTrainConfig, processor, data, samples, problems, *, negatives: int = 0
              ) -> tuple[list[Example], int]:
    if data is None and samples is None:
        return [], 0
    paths = load_labelled(data, samples=samples, problems=problems, labels=cfg.labels,
                          min_rollouts=cfg.min_rollouts, threshold=cfg.first_error_threshold, dedupe=cfg.dedupe)
    if cfg.label_filter:
        paths = _filter_labels(paths, cfg)
    if negatives:
        made = answer_negatives(paths, RuleGrader(), per_path=negatives, seed=cfg.seed)
        print(f"answer negatives: {len(made)} made from {len(paths)} paths")
        paths += made
    return encode_examples(paths, get_scheme(cfg.scheme), processor, max_length=cfg.max_length)


def encode_examples(paths: list[LabelledPath], scheme, processor, *, max_length: int | None = None
                    ) -> tuple[list[Example], int]:
    """Encode labelled paths with the scheme's formatter; returns (examples, number dropped as too long)."""
    out, dropped, images = [], 0, {}
    for p in tqdm(paths, desc="encode", unit="path", disable=len(paths) < 2000):
        enc = encode(scheme, processor, p.problem, p.steps, images)
        if len(images) > 64:
            images.clear()
        if max_length is not None and len(enc.input_ids) > max_length:
            dropped += 1
            continue
        out.append(Example(enc.input_ids, enc.positions, enc.images, list(p.targets)))
    return out, dropped


def collate_examples(examples: list[Example], processor, padding_side: str = "right") -> dict:
    """The training path's batch: the scoring collate plus targets at the step positions."""
    batch = collate(examples, processor, padding_side=padding_side)
    flat = [t for e in examples for t in e.targets]
    batch["targets"] = torch.tensor([0.0 if t is None else t for t in flat], dtype=torch.float32)
    batch["supervised"] = torch.tensor([t is not None for t in flat], dtype=torch.bool)
    return batch


def step_loss(logits: torch.Tensor, targets: torch.Tensor, supervised: torch.Tensor, kind: str) -> torch.Tensor:
    """BCE at supervised step positions: against the soft label, or against label > 0."""
    target = targets if kind == "soft" else (targets > 0).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * supervised).sum() / supervised.sum().clamp(min=1)


@torch.no_grad()
def evaluate(model, examples: list[Example], processor, cfg: PRMTrainConfig) -> dict:
    """Step-level loss, accuracy at 0.5 and AUROC (a step is right when its label is >= 0.5).
    Every process runs the whole set, as sharded models (ZeRO-3, FSDP) need."""
    model.eval()
    device = next(model.parameters()).device
    logits, targets = [], []
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    for start in range(0, len(order), cfg.batch_size):
        batch = collate_examples([examples[i] for i in order[start : start + cfg.batch_size]], processor)
        t, keep = batch.pop("targets"), batch.pop("supervised")
        out = model(**{k: v.to(device) for k, v in batch.items()}).float().cpu()
        logits.append(out[keep])
        targets.append(t[keep])
    x, y = torch.cat(logits), torch.cat(targets)
    loss = step_loss(x, y, torch.ones_like(y, dtype=torch.bool), cfg.loss).item()
    right = (y >= 0.5).tolist()
    probs = torch.sigmoid(x).tolist()
    acc = sum((p >= 0.5) == r for p, r in zip(probs, right)) / max(1, len(right))
    return {"loss": round(loss, 5), "accuracy": round(acc, 5), "auroc": auroc(probs, right), "steps": len(right)}


def _reduce(acc, value, how: str):
    """A number (or list) combined over processes; every process must call it."""
    out = acc.reduce(torch.tensor(value, dtype=torch.float64, device=acc.device), how).tolist()
    return int(out) if isinstance(value, int) else out


def _checkpoint(acc, out: Path, state: dict) -> None:
    """Accelerate state (safetensors weights, optimizer, schedule, RNG) to checkpoints/step-N;
    `trainer_state.json` (step, log, counters), written last, marks it complete; older ones are removed."""
    path = out / CHECKPOINTS / f"step-{state['step']:07d}"
    acc.save_state(str(path))
    if acc.is_main_process:
        (path / STATE).write_text(json.dumps(state) + "\n")
        for old in (out / CHECKPOINTS).glob("step-*"):
            if old != path:
                shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def _latest_checkpoint(out: Path) -> Path | None:
    done = sorted(p for p in (out / CHECKPOINTS).glob("step-*") if (p / STATE).is_file())
    return done[-1] if done else None


def _saved_config(out: Path) -> dict | None:
    path = out / "train_config.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _finished(out: Path, cfg: PRMTrainConfig) -> dict | None:
    path = out / "train_log.json"
    if not path.is_file():
        return None
    log = json.loads(path.read_text())
    return log if log.get("finished") and log.get("config") == asdict(cfg) else None
