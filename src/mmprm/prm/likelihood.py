"""A PRM that needs no training: the policy's own confidence in each step.

Score of a step = the minimum log-probability, under a causal LM or VLM, of
the step's tokens given the problem (with its images) and the steps before
it. The input is the policy's own prompt (`build_messages`, the chat
template's generation prompt) followed by the steps as `render_steps` writes
them, the assistant text tokenised on its own as policy training does, so
the step text is tokenised as the policy produced it. One forward pass
scores every step of a candidate. On the tiny task this untrained baseline
beat every trained PRM (docs/results.md): report it beside them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mmprm.backbone import is_multimodal, load_backbone, tokenizer_of
from mmprm.policy.prompt import DEFAULT_SYSTEM, build_messages, flatten_content
from mmprm.prm.base import PRM
from mmprm.prm.formats import Encoded, collate, expand_images
from mmprm.prm.model import output_head, step_hidden
from mmprm.steps import STEP_CLOSE, STEP_OPEN, render_steps
from mmprm.types import Problem


class LikelihoodPRM(PRM):
    """Per-step minimum token log-probability; scores are <= 0, higher is better."""

    name = "likelihood"
    bounded = False

    def __init__(self, model, processor, *, batch_size: int = 8, system: str | None = DEFAULT_SYSTEM,
                 device: str | torch.device | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.batch_size = batch_size
        self.system = system
        self._images: dict = {}
        self._pixels: dict = {}

    @classmethod
    def from_path(cls, path: str | Path, *, trust_remote_code: bool = False, **options) -> LikelihoodPRM:
        model, processor = load_backbone(path, trust_remote_code=trust_remote_code)
        prm = cls(model, processor, **options)
        prm.name = f"likelihood:{path}"
        return prm

    def encode(self, problem: Problem, steps: list[str]) -> tuple[Encoded, list[list[int]]]:
        """The row, and for each step the indices of its tokens in it."""
        messages = build_messages(problem, system=self.system)
        tok = tokenizer_of(self.processor)
        if is_multimodal(self.processor):
            prompt = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            if problem.images:
                prompt_ids = expand_images(self.processor, prompt, prompt_ids, problem.images, False, self._images)
        else:
            if problem.images:
                raise ValueError(f"problem {problem.id!r} has images but {self.name} is a text-only model")
            flat = [{**m, "content": flatten_content(m["content"])} for m in messages]
            prompt = tok.apply_chat_template(flat, tokenize=False, add_generation_prompt=True)
            prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        body = render_steps(steps)
        enc = tok(body, add_special_tokens=False, return_offsets_mapping=True)
        n = len(prompt_ids)
        spans, cursor = [], 0
        for s in steps:  # the character span of each step's text inside `body`
            start = cursor + len(STEP_OPEN)
            spans.append((start, start + len(s)))
            cursor = start + len(s) + len(STEP_CLOSE) + 1
        groups = [[n + j for j, (a, b) in enumerate(enc["offset_mapping"]) if a < end and b > start and b > a]
                  for start, end in spans]
        ids = [int(i) for i in prompt_ids] + list(enc["input_ids"])
        # the output at index j - 1 predicts token j
        positions = [j - 1 for g in groups for j in g]
        return Encoded(ids, positions, list(problem.images)), groups

    def score(self, problem: Problem, candidates: list[list[str]]) -> list[list[float]]:
        return self.score_many([(problem, candidates)])[0]

    def score_many(self, items: list[tuple[Problem, list[list[str]]]]) -> list[list[list[float]]]:
        encoded = [self.encode(problem, steps) for problem, cands in items for steps in cands]
        flat: list[list[float]] = [[] for _ in encoded]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0].input_ids))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            batch = collate([encoded[i][0] for i in index], self.processor, pixel_cache=self._pixels)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            logp = self._token_logprobs(batch).cpu().tolist()
            k = 0
            for i in index:
                per_step = []
                for group in encoded[i][1]:
                    per_step.append(min(logp[k : k + len(group)]) if group else 0.0)
                    k += len(group)
                flat[i] = per_step
        if len(self._pixels) > 256:
            self._pixels.clear()
            self._images.clear()
        out, k = [], 0
        for _, cands in items:
            out.append(flat[k : k + len(cands)])
            k += len(cands)
        return out

    @torch.inference_mode()
    def _token_logprobs(self, batch: dict) -> torch.Tensor:
        """log P(token at col + 1 | everything before it) for each (row, col) step position."""
        rows, cols = batch.pop("step_rows"), batch.pop("step_cols")
        hidden = step_hidden(self.model, batch, rows, cols)
        logp = torch.log_softmax(output_head(self.model)(hidden).float(), dim=-1)
        targets = batch["input_ids"][rows, cols + 1]
        return logp.gather(1, targets[:, None]).squeeze(1)

    def close(self) -> None:
        self._pixels.clear()
        self._images.clear()
