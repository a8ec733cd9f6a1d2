"""The settings of a critic training run (no torch here: the command line reads them)."""

from __future__ import annotations

from dataclasses import dataclass

from mmprm.config import setting


@dataclass
class CriticTrainConfig:
    """The settings of a run, saved beside its output as train_config.json."""

    data: str = setting(help="critiques from `mmprm critic build-data` (JSONL)")
    init: str = setting(help="the chat VLM to start from (a policy checkpoint, e.g. Qwen2.5-VL or the tiny one)")
    steps: int = setting(help="optimizer steps")
    batch_size: int = setting(16, "examples per micro-batch")
    grad_accum: int = setting(1, "micro-batches per optimizer step")
    lr: float = setting(1e-3, "peak learning rate")
    warmup: float = setting(0.05, "share of the steps spent warming up")
    weight_decay: float = setting(0.0, "AdamW weight decay on matrices")
    verdict_weight: float = setting(1.0, "loss weight of the verdict words' tokens against the rest of the "
                                    "critique (1: plain fine-tuning)")
    freeze_vision: bool = setting(True, "keep the vision tower frozen")
    lora: bool = setting(False, "train LoRA adapters (needs peft); merged into the saved weights")
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA alpha")
    gradient_checkpointing: bool = setting(False, "trade compute for memory")
    save_every: int | None = setting(None, "steps between resumable checkpoints")
    seed: int = setting(0, "seeds the batch plan")
    num_threads: int | None = setting(1, "CPU threads (1 is fastest on shared cores)")
    device: str = setting("cpu", "torch device")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError(f"steps, batch_size and grad_accum must be positive, got {self.steps}, "
                             f"{self.batch_size} and {self.grad_accum}")
        self.data, self.init = str(self.data), str(self.init)
