"""The settings of a policy training run (no torch here: the command line reads them)."""

from __future__ import annotations

from dataclasses import dataclass

from mmprm.config import setting


@dataclass
class TrainConfig:
    """The settings of a run, saved beside its output as train_config.json."""

    data: str = setting(help="the training problems: a synthetic data folder or a problems.jsonl")
    steps: int = setting(help="optimizer steps")
    batch_size: int = setting(32, "examples per step")
    lr: float = setting(2e-3, "peak learning rate")
    warmup: float = setting(0.05, "share of the steps spent warming up")
    weight_decay: float = setting(0.01, "AdamW weight decay on matrices")
    seed: int = setting(0, "seeds the tokenizer, the weights and the batch plan")
    eval_data: str | None = setting(None, "held-out problems for greedy accuracy")
    eval_limit: int = setting(200, "held-out problems evaluated at most")
    save_every: int | None = setting(None, "steps between resumable checkpoints")
    save_at: list[int] = setting(factory=list, help="steps to keep as checkpoint-STEP/ (e.g. a weak policy)")
    init: str | None = setting(None, "continue from a Qwen2-VL-style checkpoint instead of a fresh tiny model")
    vocab_size: int = setting(768, "the fresh tokenizer's vocabulary")
    model: dict = setting(factory=dict, help="tiny_config sizes (hidden_size, vision_width, ...)", flag=False)
    num_threads: int | None = setting(1, "CPU threads (1 is fastest on shared cores)")
    device: str = setting("cpu", "torch device")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive, got {self.steps} and {self.batch_size}")
        self.data = str(self.data)
        self.eval_data = None if self.eval_data is None else str(self.eval_data)
        self.save_at = sorted(set(self.save_at))
