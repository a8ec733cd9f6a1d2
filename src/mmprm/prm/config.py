"""The settings of a PRM training run (no torch here: the command line reads them).

Defaults are MM-PRM's (Du et al. 2025); `recipes/prm-mmprm.yaml` and
`recipes/prm-tiny.yaml` override them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from mmprm.config import from_recipe, setting
from mmprm.labels import LABEL_SOURCES
from mmprm.prm.schemes import SCHEMES, get_scheme


@dataclass
class PRMTrainConfig:
    """Settings of a run, saved as train_config.json. Defaults: MM-PRM (Du et al. 2025)."""

    base: str = setting("", "a local VLM or causal LM folder to start from")
    data: str | None = setting(None, "annotated paths (paths.jsonl from annotate)")
    samples: str | None = setting(None, "instead of data: graded samples (samples.jsonl), with problems, for the "
                                  "arithmetic or oracle label sources")
    problems: str | None = setting(None, "the problems.jsonl of samples")
    labels: str = setting("mc", "label source: " + "; ".join(f"{k}: {v.summary}" for k, v in LABEL_SOURCES.items()),
                          choices=tuple(LABEL_SOURCES))
    min_rollouts: int = setting(1, "MC-derived labels: an MC estimate counts from this many rollouts")
    first_error_threshold: float = setting(0.5, "first-error labels: the share of the last solvable prefix's MC "
                                           "a step must keep")
    answer_negatives: int = setting(0, "per right training path, this many copies with the last step's stated "
                                    "result changed to one the grader rejects, labelled wrong there "
                                    "(mmprm.labels.negatives; needs the reference answer only)")
    label_filter: str | None = setting(None, "mask the labelled steps a judge disagrees with most "
                                       "(mmprm.labels.agreement): a causal LM or VLM folder, usually `base`, "
                                       "whose step likelihood, calibrated to the labels, is the judge")
    label_filter_share: float = setting(0.1, "with label_filter: the share of labelled steps masked")
    loss: str = setting("soft", "soft (BCE on the target) or hard (target > 0)", choices=("soft", "hard"))
    scheme: str = setting("mmprm", "input format: " + ", ".join(SCHEMES))
    head: str = setting("token", "token ([+, -] logits) or value (a scalar head)", choices=("token", "value"))
    lr: float = setting(2e-6, "peak learning rate")
    epochs: float = setting(3.0, "passes over the data (unless max_steps)")
    batch_size: int = setting(8, "examples per device per micro-batch")
    grad_accum: int = setting(1, "micro-batches per optimizer step")
    warmup_ratio: float = setting(0.03, "share of the steps spent warming up")
    weight_decay: float = setting(0.05, "AdamW weight decay on matrices")
    max_grad_norm: float = setting(1.0, "gradient clipping (0: off)")
    max_steps: int | None = setting(None, "optimizer steps; overrides epochs")
    max_length: int = setting(4096, "longer examples are dropped (and counted), never cut")
    bucket: bool = setting(True, "length bucketing: batches of like length, less padding")
    freeze_vision: bool = setting(True, "keep the vision tower frozen")
    lora: bool = setting(False, "train LoRA adapters (needs peft)")
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA alpha")
    gradient_checkpointing: bool = setting(False, "trade compute for memory")
    eval_data: str | None = setting(None, "held-out paths.jsonl for step-level metrics")
    eval_samples: str | None = setting(None, "or held-out samples.jsonl ...")
    eval_problems: str | None = setting(None, "... with their problems.jsonl")
    eval_every: int | None = setting(None, "steps between evaluations (the end is always evaluated)")
    save_every: int = setting(200, "steps between resumable checkpoints")
    log_every: int = setting(10, "steps between logged losses")
    seed: int = setting(0, "seeds the batch plan and the head's initialisation")
    num_threads: int | None = setting(1, "CPU threads (1 is fastest on shared cores)")
    dedupe: bool = setting(True, "drop repeated (problem, steps, labels) paths")

    def __post_init__(self) -> None:
        for f in fields(self):  # paths may be given as Path; the saved config holds text
            if isinstance(getattr(self, f.name), Path):
                setattr(self, f.name, str(getattr(self, f.name)))
        get_scheme(self.scheme)
        checks = {"labels": tuple(LABEL_SOURCES), "loss": ("soft", "hard"), "head": ("token", "value")}
        for key, allowed in checks.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.answer_negatives < 0:
            raise ValueError(f"answer_negatives must be at least 0, got {self.answer_negatives}")
        if self.answer_negatives and self.labels == "advantage":
            raise ValueError("answer_negatives labels the changed step 0 (wrong); advantage targets are not "
                             "verdicts (0.5 means no change)")
        if not 0.0 < self.label_filter_share < 1.0:
            raise ValueError(f"label_filter_share must be in (0, 1), got {self.label_filter_share}")
        if self.batch_size < 1 or self.grad_accum < 1 or self.save_every < 1:
            raise ValueError("batch_size, grad_accum and save_every must be positive")

    @property
    def label_source_name(self) -> str:
        """The labels as the saved PRM and the reports name them: the source, and the filter if any."""
        if not self.label_filter:
            return self.labels
        return f"{self.labels}, {self.label_filter_share:g} masked by likelihood agreement"

    @classmethod
    def from_recipe(cls, path: str | Path | None, **overrides) -> PRMTrainConfig:
        """Defaults, then the recipe's `train:` section, then explicit overrides (None = unset)."""
        return from_recipe(cls, path, "train", **overrides)


@dataclass
class ScoreConfig:
    """Settings of `mmprm score` (recipe section `score:`)."""

    batch_size: int = setting(16, "candidates per forward batch")
    problems_per_chunk: int = setting(8, "problems scored together (their candidates share batches)")

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.problems_per_chunk < 1:
            raise ValueError(f"batch_size and problems_per_chunk must be at least 1, got {self.batch_size} and "
                             f"{self.problems_per_chunk}")
