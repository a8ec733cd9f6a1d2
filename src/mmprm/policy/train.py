"""Train a policy on reference solutions, and measure how good and how diverse it is.

Supervised fine-tuning with the loss on the assistant's tokens only, AdamW and
a cosine schedule; budgets are in steps, so a run gives the same model on a
fast or a slow machine. By default it starts from a fresh tiny Qwen2-VL whose
tokenizer is trained on the data; `init` continues from any Qwen2-VL-style
checkpoint instead. A run killed midway resumes from its last `save_every`
checkpoint when started again with the same arguments.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from mmprm.data import load_problems
from mmprm.grading.equivalence import equivalent
from mmprm.io import RejectLog
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.policy.config import TrainConfig
from mmprm.policy.hf import HFPolicy
from mmprm.policy.prompt import build_messages, flatten_content
from mmprm.policy.tiny.model import new_tiny_policy, save_policy
from mmprm.sft import LoopSettings, encode_chat, open_run, run_sft, saved_state
from mmprm.training import torch_threads
from mmprm.types import Problem


def train_policy(cfg: TrainConfig, out_dir: str | Path) -> dict:
    """Train on the reference solutions of `cfg.data`; save to `out_dir`.

    Saves the final model, `checkpoint-STEP/` for each step in `save_at`
    (e.g. a weak policy on the way to a strong one), and train_log.json.
    Returns the log.
    """
    out = open_run(cfg, out_dir, "policy")
    with torch_threads(cfg.num_threads):
        return _train(cfg, out)


def _train(cfg: TrainConfig, out: Path) -> dict:
    problems = _load(cfg.data, out / "train_problems.jsonl")
    targets = [reference_of(p) for p in problems]
    state = saved_state(out, asdict(cfg))
    if state is not None:  # a killed run: continue from its last checkpoint
        model, processor = _load_checkpoint(out / "last")
    elif cfg.init:
        model, processor = _load_checkpoint(cfg.init)
    else:
        model, processor = new_tiny_policy(
            _corpus(problems, targets), vocab_size=cfg.vocab_size, seed=cfg.seed, **cfg.model
        )
    model.to(cfg.device)
    examples = [encode_chat(build_messages(p), t, processor, name=f"problem {p.id!r}")
                for p, t in zip(problems, targets)]
    eval_problems = _load(cfg.eval_data, out / "eval_problems.jsonl")[: cfg.eval_limit] if cfg.eval_data else []

    def measure(step: int, path: Path) -> dict | None:
        if not eval_problems:
            return None
        acc = greedy_accuracy(HFPolicy(path, device=cfg.device, batch_size=32), eval_problems)
        tqdm.write(f"step {step}: greedy accuracy {acc:.3f} on {len(eval_problems)} problems")
        return {"greedy_accuracy": acc}

    settings = LoopSettings(cfg.steps, cfg.batch_size, cfg.lr, cfg.warmup, cfg.weight_decay, cfg.seed, cfg.device,
                            cfg.save_every, tuple(cfg.save_at))
    start = state["step"] if state else 0
    log = run_sft(model, processor, examples, settings, out, state=state, log={"config": asdict(cfg)},
                  save=save_policy, on_save=measure, desc="policy train")
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
