"""Train a policy on reference solutions, and measure how good and how diverse it is.

Supervised fine-tuning with the loss on the assistant's tokens only, AdamW and
a cosine schedule; budgets are in steps, so a run gives the same model on a
fast or a slow machine. By default it starts from a fresh tiny Qwen2-VL whose
tokenizer is trained on the data; `init` continues from any Qwen2-VL-style
checkpoint instead. A run killed midway resumes from its last `save_every`
checkpoint when started again with the same arguments.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm
from transformers import BatchFeature

from mmprm.data import load_problems
from mmprm.grading.equivalence import equivalent
from mmprm.io import RejectLog, load_image
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.policy.config import TrainConfig
from mmprm.policy.hf import HFPolicy
from mmprm.policy.prompt import build_messages, flatten_content
from mmprm.policy.tiny.model import new_tiny_policy, save_policy
from mmprm.training import batch_plan, optimizer_and_schedule, refuse_other_settings, torch_threads, warmup_steps
from mmprm.types import Problem

STATE_FILE = "trainer_state.pt"  # optimizer, schedule and step of the last checkpoint


@dataclass
class _Example:
    ids: list[int]
    n_prompt: int
    images: list[str]


def train_policy(cfg: TrainConfig, out_dir: str | Path) -> dict:
    """Train on the reference solutions of `cfg.data`; save to `out_dir`.

    Saves the final model, `checkpoint-STEP/` for each step in `save_at`
    (e.g. a weak policy on the way to a strong one), and train_log.json.
    Returns the log.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print("policy training config:", json.dumps(asdict(cfg)))
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    with torch_threads(cfg.num_threads):
        return _train(cfg, out)


def _train(cfg: TrainConfig, out: Path) -> dict:
    problems = _load(cfg.data, out / "train_problems.jsonl")
    targets = [reference_of(p) for p in problems]
    state = _saved_state(out, cfg)
    if state is not None:  # a killed run: continue from its last checkpoint
        model, processor = _load_checkpoint(out / "last")
    elif cfg.init:
        model, processor = _load_checkpoint(cfg.init)
    else:
        model, processor = new_tiny_policy(
            _corpus(problems, targets), vocab_size=cfg.vocab_size, seed=cfg.seed, **cfg.model
        )
    model.to(cfg.device)
    examples = [_encode(p, t, processor) for p, t in zip(problems, targets)]
    eval_problems = _load(cfg.eval_data, out / "eval_problems.jsonl")[: cfg.eval_limit] if cfg.eval_data else []

    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = optimizer_and_schedule(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                        warmup=warmup_steps(cfg.warmup, cfg.steps), total=cfg.steps)
    log: dict = {"config": asdict(cfg), "examples": len(examples), "parameters": sum(p.numel() for p in params),
                 "losses": [], "evals": [], "checkpoints": []}
    start = 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        log.update(state["log"])
        start = state["step"]
        print(f"resuming {out} from step {start}")
    plan = batch_plan([len(e.ids) for e in examples], cfg.batch_size, seed=cfg.seed, total=cfg.steps)
    model.train()
    t0, window = time.time(), []
    bar = tqdm(range(start, cfg.steps), desc="policy train", unit="step", initial=start, total=cfg.steps)
    for step in bar:
        batch = _collate([examples[i] for i in plan[step]], processor, model.config).to(cfg.device)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        window.append(loss.item())
        done = step + 1
        if done % 10 == 0 or done == cfg.steps:
            log["losses"].append({"step": done, "loss": sum(window) / len(window), "lr": sched.get_last_lr()[0]})
            bar.set_postfix(loss=f"{log['losses'][-1]['loss']:.3f}")
            window = []
        if done in cfg.save_at or done == cfg.steps:
            path = save_policy(model, processor, out if done == cfg.steps else out / f"checkpoint-{done}")
            log["checkpoints"].append({"step": done, "path": str(path)})
            if eval_problems:
                acc = greedy_accuracy(HFPolicy(path, device=cfg.device, batch_size=32), eval_problems)
                log["evals"].append({"step": done, "greedy_accuracy": acc})
                tqdm.write(f"step {done}: greedy accuracy {acc:.3f} on {len(eval_problems)} problems")
            model.train()
        if cfg.save_every and done % cfg.save_every == 0 and done < cfg.steps:
            _checkpoint_state(out, done, model, processor, opt, sched, log)
    log["time_s"] = round(time.time() - t0, 1)
    log["final_loss"] = log["losses"][-1]["loss"]
    (out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    (out / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(out / "last", ignore_errors=True)  # the resume copy; the final model is in `out`
    evals = f", greedy accuracy {log['evals'][-1]['greedy_accuracy']:.3f}" if log["evals"] else ""
    print(f"trained {cfg.steps - start} steps in {log['time_s']} s: loss {log['final_loss']:.3f}{evals}; "
          f"saved to {out}")
    return log


def reference_of(problem: Problem) -> str:
    """The training target: the synthetic reference solution, else a `meta.reference` text."""
    if "reference_steps" in problem.meta:
        from mmprm.data.synth import reference_text

        return reference_text(problem)
    if isinstance(problem.meta.get("reference"), str):
        return problem.meta["reference"]
    raise ValueError(f"problem {problem.id!r} has no reference solution (meta.reference_steps or meta.reference)")


def _corpus(problems: list[Problem], targets: list[str], limit: int = 5000):
    """Chats as the model will see them, minus the special tokens: the tokenizer's training text."""
    for problem, target in zip(problems[:limit], targets):
        for m in [*build_messages(problem), {"role": "assistant", "content": target}]:
            yield f"{m['role']}\n{flatten_content(m['content'])}"


def _load(data: str | Path, output: Path) -> list[Problem]:
    path = Path(data)
    if path.is_dir():
        path = path / "problems.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no problems at {path} (give a problems.jsonl or the folder holding one)")
    rejects = RejectLog(output, echo=tqdm.write)
    problems = load_problems(path, rejects=rejects)
    rejects.close()
    if not problems:
        raise ValueError(f"{path} holds no usable problems")
    return problems


def _load_checkpoint(path: str):
    """Model and processor of an existing Qwen2-VL-style checkpoint, to train further."""
    policy = HFPolicy(path)
    if not policy.multimodal:
        raise ValueError(f"{path} is text-only; policy training expects an image-text-to-text checkpoint")
    return policy.model, policy.processor


def _encode(problem: Problem, target: str, processor) -> _Example:
    """Token ids of prompt + target, with each image's placeholder expanded as the processor would."""
    tok = processor.tokenizer
    prompt = processor.apply_chat_template(build_messages(problem), tokenize=False, add_generation_prompt=True)
    image_proc = processor.image_processor
    pieces = prompt.split(processor.image_token)
    if len(pieces) - 1 != len(problem.images):
        raise ValueError(f"problem {problem.id!r}: the chat template shows {len(pieces) - 1} of "
                         f"{len(problem.images)} images")
    text = pieces[0]
    for ref, piece in zip(problem.images, pieces[1:]):
        w, h = _image_size(ref)
        n = image_proc.get_number_of_image_patches(h, w, {}) // image_proc.merge_size**2
        text += processor.image_token * n + piece
    prompt_ids = tok.encode(text, add_special_tokens=False)
    target_ids = tok.encode(target + tok.eos_token, add_special_tokens=False)
    return _Example(prompt_ids + target_ids, len(prompt_ids), list(problem.images))


def _image_size(ref: str) -> tuple[int, int]:
    if ref.startswith("data:"):
        return load_image(ref).size
    with Image.open(ref) as image:  # reads the header only
        return image.size


def _collate(batch: list[_Example], processor, config) -> BatchFeature:
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
    images = [load_image(ref) for ex in batch for ref in ex.images]
    if images:
        pixels = processor.image_processor(images=images, return_tensors="pt")
        inputs.update(pixel_values=pixels["pixel_values"], image_grid_thw=pixels["image_grid_thw"])
        inputs["mm_token_type_ids"] = (ids == config.image_token_id).long()
    return BatchFeature(inputs)


def _checkpoint_state(out: Path, step: int, model, processor, opt, sched, log: dict) -> None:
    """Weights to out/last/, optimizer and schedule beside them; written then renamed, so a kill leaves the old one."""
    save_policy(model, processor, out / "last")
    tmp = out / (STATE_FILE + ".tmp")
    torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "log": log}, tmp)
    tmp.replace(out / STATE_FILE)


def _saved_state(out: Path, cfg: TrainConfig) -> dict | None:
    """The state a killed run left in `out`, if any; it must come from the same settings."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    state = torch.load(path, weights_only=False)
    refuse_other_settings(out, state["log"]["config"], asdict(cfg), f"delete {path} to start afresh")
    return state


# ---- measuring a policy -----------------------------------------------------

def greedy_accuracy(policy: Policy, problems: list[Problem], *, max_tokens: int = 160) -> float:
    outs = policy.sample_batch([Request(p) for p in problems], SamplingParams(temperature=0, max_tokens=max_tokens))
    return sum(_right(p, o[0].answer) for p, o in zip(problems, outs)) / len(problems)


def evaluate_policy(
    policy: Policy, problems: list[Problem], *, n: int = 16, temperature: float = 0.8, max_tokens: int = 160,
    seed: int = 0,
) -> dict:
    """Greedy accuracy, pass@1 and pass@n of sampled solutions, and distinct answers among the n."""
    params = SamplingParams(n=n, temperature=temperature, max_tokens=max_tokens, seed=seed)
    samples = policy.sample_batch([Request(p) for p in problems], params)
    right = [[_right(p, c.answer) for c in cs] for p, cs in zip(problems, samples)]
    distinct = [len({c.answer for c in cs}) for cs in samples]
    return {
        "problems": len(problems),
        "greedy_accuracy": greedy_accuracy(policy, problems, max_tokens=max_tokens),
        "pass@1": sum(sum(r) / n for r in right) / len(problems),
        f"pass@{n}": sum(any(r) for r in right) / len(problems),
        "distinct_answers": sum(distinct) / len(problems),
        "temperature": temperature,
    }


def _right(problem: Problem, answer: str | None) -> bool:
    return equivalent(problem.answer, answer).equal
