"""Step rewards for RL training loops, from any PRM (a served one above all).

`PRMReward` is a plain callable with TRL's reward-function signature
(`reward(prompts, completions, **columns) -> list[float]`): completions are
split into steps with the project's own parser, every completion of the
batch is scored in one `score_many` call, and the outcome-style reward is
the step scores aggregated (`min`, `last`, `product`, ...: mmprm.aggregate).
`rewards()` also gives the per-step values and where each step ends in the
completion's text, for trainers that place dense rewards at token positions
(map the character offsets through the tokenizer's offset mapping).
`verl_compute_score` is verl's custom reward function interface over the same.

Give it `http://HOST:PORT` (a PRM behind `mmprm serve-prm`) so the trainer's
GPUs hold no PRM; any PRM spec or object works the same.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

from mmprm.aggregate import aggregate
from mmprm.policy.prompt import flatten_content
from mmprm.prm.base import PRM
from mmprm.steps import split_steps
from mmprm.types import Problem

OUTCOMES = ("min", "last", "product", "mean")  # of mmprm.aggregate's rules, those that make an RL reward


@dataclass
class StepRewards:
    """One completion's rewards: its steps, a score per step, where each step ends in the
    text (character offset, exclusive), and the aggregated outcome reward."""

    steps: list[str]
    step_rewards: list[float]
    step_ends: list[int]
    outcome: float


class PRMReward:
    """Rewards from `prm` (a PRM, or a spec such as `http://127.0.0.1:8000`).

    A completion with no step gets `empty_reward` (default 0.0): there is
    nothing to score, and a trainer needs a number.
    """

    def __init__(self, prm: PRM | str, *, aggregation: str = "min", empty_reward: float = 0.0):
        if aggregation not in OUTCOMES:
            raise ValueError(f"aggregation must be one of {', '.join(OUTCOMES)}, got {aggregation!r}")
        if isinstance(prm, str):
            from mmprm.prm.load import load_prm

            prm = load_prm(prm)
        self.prm, self.aggregation, self.empty_reward = prm, aggregation, empty_reward
        self.__name__ = f"prm_{aggregation}"  # TRL logs each reward function under its __name__

    def __call__(self, prompts: list, completions: list, **columns) -> list[float]:
        """TRL's signature: dataset columns arrive as keyword arguments; `images` or `image`
        (one image or a list per row: PIL images, absolute paths or data URIs) are shown to the PRM."""
        images = columns.get("images", columns.get("image"))
        return [r.outcome for r in self.rewards(prompts, completions, images)]

    def rewards(self, prompts: list, completions: list, images: list | None = None) -> list[StepRewards]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        if images is not None and len(images) != len(prompts):
            raise ValueError(f"{len(images)} image entries for {len(prompts)} prompts")
        texts = [_text(c) for c in completions]
        steps = [split_steps(t) for t in texts]
        items = [(Problem(id=f"row-{k}", question=_text(p), answer="",
                          images=_image_refs(images[k] if images is not None else None)), [s])
                 for k, (p, s) in enumerate(zip(prompts, steps)) if s]
        scored = iter(self.prm.score_many(items)) if items else iter(())
        out = []
        for text, s in zip(texts, steps):
            if not s:
                out.append(StepRewards([], [], [], self.empty_reward))
                continue
            values = next(scored)[0]
            outcome = aggregate(values, self.aggregation, bounded=self.prm.bounded)
            out.append(StepRewards(s, values, _step_ends(text, s), outcome))
        return out

    def close(self) -> None:
        self.prm.close()


_VERL: dict[tuple[str, str], PRMReward] = {}


def verl_compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None, *,
                       prm: str = "http://127.0.0.1:8000", aggregation: str = "min") -> dict:
    """verl's `custom_reward_function` interface: the question comes from
    `extra_info["question"]` (put it there in the parquet's extra_info), the PRM and
    aggregation from `custom_reward_function.reward_kwargs`. Returns verl's dict form:
    `score`, plus the step count and the lowest step reward for its logs."""
    key = (prm, aggregation)
    if key not in _VERL:
        _VERL[key] = PRMReward(prm, aggregation=aggregation)
    question = (extra_info or {}).get("question")
    if not question:
        raise ValueError("verl_compute_score needs the question in extra_info['question']")
    (r,) = _VERL[key].rewards([question], [solution_str], [(extra_info or {}).get("images")])
    return {"score": r.outcome, "prm_steps": len(r.steps), "prm_min_step": min(r.step_rewards, default=0.0)}


def _text(value) -> str:
    """A prompt or completion as text: a string, or chat messages (the last user or assistant turn)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        roles = [m.get("role") for m in value]
        wanted = "assistant" if "assistant" in roles and roles[-1] == "assistant" else "user"
        turn = next((m for m in reversed(value) if m.get("role") == wanted), value[-1])
        return flatten_content(turn.get("content", ""))
    raise ValueError(f"expected text or a list of chat messages, got {type(value).__name__}")


def _image_refs(value) -> list[str]:
    """One row's images as the PRM reads them: absolute paths and data URIs kept, PIL images encoded."""
    if value is None:
        return []
    out = []
    for image in value if isinstance(value, list | tuple) else [value]:
        if isinstance(image, str | Path):
            ref = str(image)
            if not ref.startswith("data:") and not Path(ref).is_absolute():
                raise ValueError(f"image path {ref!r} must be absolute (or pass a PIL image or a data URI)")
            out.append(ref)
        elif hasattr(image, "save"):  # a PIL image, as datasets' Image feature gives
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="PNG")
            out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
        else:
            raise ValueError(f"unsupported image {type(image).__name__}: give PIL images, paths or data URIs")
    return out


def _step_ends(text: str, steps: list[str]) -> list[int]:
    """Where each step ends in `text` (the parser strips steps, so each is found after the last)."""
    ends, pos = [], 0
    for step in steps:
        at = text.find(step, pos)
        pos = at + len(step) if at >= 0 else pos
        ends.append(pos)
    return ends
