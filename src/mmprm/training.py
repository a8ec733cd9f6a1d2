"""What every trainer here shares: the batch plan, the schedule, the optimizer,
the thread guard and the rule that a killed run resumes only under its own settings.

The policy trainer and the PRM trainer (and the generative critic after them)
differ in model and loss only; the mechanisms that decide which examples a
step sees, how the learning rate moves and when a resume is allowed live here,
written once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def batch_plan(lengths: list[int], batch_size: int, *, seed: int, total: int, bucket: bool = False
               ) -> list[list[int]]:
    """`total` batches of example indices, a function of (seed, lengths) only, so a
    resumed run sees the same batches. Each epoch is a fresh permutation. Without
    `bucket` batches run on across epoch ends (every batch full); with it each
    window of 64 batches of an epoch is sorted by length before it is cut, and
    the epoch's batches are shuffled, so a batch holds examples of like length."""
    n = len(lengths)
    if n == 0 or batch_size < 1 or total < 0:
        raise ValueError(f"a batch plan needs examples and batch_size >= 1 (got {n} and {batch_size})")
    if not bucket:
        stream: list[int] = []
        epoch = 0
        while len(stream) < total * batch_size:
            stream += _permutation(n, seed, epoch).tolist()
            epoch += 1
        return [stream[i * batch_size : (i + 1) * batch_size] for i in range(total)]
    plan: list[list[int]] = []
    epoch = 0
    while len(plan) < total:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        window = batch_size * 64
        chunks = [sorted(perm[i : i + window], key=lengths.__getitem__) for i in range(0, n, window)]
        batches = [c[j : j + batch_size] for c in chunks for j in range(0, len(c), batch_size)]
        plan += [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        epoch += 1
    return plan[:total]


def _permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def steps_for_epochs(n_examples: int, batch_size: int, epochs: float) -> int:
    """Optimizer batches that cover `epochs` passes over the data (at least one)."""
    return max(1, math.ceil(epochs * math.ceil(n_examples / batch_size)))


def cosine_with_warmup(step: int, *, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up over `warmup` steps, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def optimizer_and_schedule(params: list[torch.nn.Parameter], *, lr: float, weight_decay: float, warmup: int,
                           total: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (betas 0.9, 0.95), weight decay on matrices only, and the cosine schedule."""
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_with_warmup(s, warmup=warmup, total=total))
    return opt, sched


def warmup_steps(ratio: float, total: int) -> int:
    return max(1, round(ratio * total))


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with `n` CPU threads (None: as is), then restore: one thread is the fastest on shared cores."""
    before = torch.get_num_threads()
    if n and not torch.cuda.is_available():
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def refuse_other_settings(out: Path, saved: dict | None, current: dict, restart_hint: str) -> None:
    """A killed run resumes only under the settings it was started with."""
    if saved is None or saved == current:
        return
    from mmprm.output import settings_differences

    changed = "; ".join(settings_differences(saved, current))
    raise ValueError(f"{out} holds a killed run with other settings ({changed}); {restart_hint}")
