"""A trained generative critic (GM-PRM): a chat VLM folder written by `mmprm critic train`.

It writes a critique greedily in its layout, the parser reads it, and each reviewed step's
P(correct) is read from the verdict: one teacher-forced pass over the prompt and the
critique, and at each verdict the probability of the layout's "right" word against its
"wrong" word, taken at the first token where the two differ (`verdicts.per_step` makes them
one score a step). The critique text is kept with the scores, so a report can show why a
step was judged.

With `samples` > 1 it also samples `samples` − 1 more critiques and averages each step's
P(correct) over all of them (self-consistency over critiques): one critique is a single
reading of the figure, and its verdicts inherit every slip of it. The greedy critique is
the one shown, parsed and corrected from.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mmprm.critic.base import Critic, Review
from mmprm.critic.critique import VERDICT_WORDS, parse, verdict_offsets
from mmprm.critic.prompt import critic_messages
from mmprm.critic.verdicts import per_step
from mmprm.policy.base import SamplingParams
from mmprm.policy.hf import HFPolicy
from mmprm.sft import collate, encode_chat
from mmprm.types import Problem

CONFIG_FILE = "critic_config.json"  # the layout a critic was trained on, beside its weights


def critic_layout(path: str | Path) -> str:
    config = Path(path) / CONFIG_FILE
    if not config.is_file():
        raise ValueError(f"{path} is not a critic trained by `mmprm critic train` (no {CONFIG_FILE})")
    return json.loads(config.read_text())["layout"]


class HFCritic(Critic):
    def __init__(self, path: str | Path, *, device: str = "cpu", batch_size: int = 16, max_tokens: int = 320,
                 samples: int = 1, temperature: float = 1.0, seed: int = 0):
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        self.samples, self.temperature, self.seed = samples, temperature, seed
        self.layout = critic_layout(path)
        self.policy = HFPolicy(path, device=device, batch_size=batch_size)
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.name = f"critic:{path}"
        right, wrong = VERDICT_WORDS[self.layout]
        self._words = (right, wrong)

    def review_many(self, items: list[tuple[Problem, list[str]]]) -> list[Review]:
        """Critiques of many solutions: generated in batches, then read in batches."""
        chats = [critic_messages(problem, steps, self.layout) for problem, steps in items]
        outs = self.policy.generate_messages(chats, SamplingParams(temperature=0, max_tokens=self.max_tokens),
                                             continue_final_message=False)
        if self.samples > 1:
            more = self.policy.generate_messages(chats, self._sampling(), continue_final_message=False)
            outs = [greedy + sampled for greedy, sampled in zip(outs, more)]
        every_chat = [chat for chat, gens in zip(chats, outs) for _ in gens]
        every_text = [g.text for gens in outs for g in gens]
        probs: list[list[float]] = []
        for start in range(0, len(every_text), self.batch_size):
            probs += self._verdict_probabilities(every_chat[start : start + self.batch_size],
                                                 every_text[start : start + self.batch_size])
        reviews, at = [], 0
        for (_, steps), gens in zip(items, outs):
            scores = [per_step(p, len(steps)) for p in probs[at : at + len(gens)]]
            at += len(gens)
            text = gens[0].text
            reviews.append(Review(text, parse(text, len(steps), self.layout),
                                  [sum(column) / len(column) for column in zip(*scores)],
                                  sum(g.completion_tokens for g in gens)))
        return reviews

    def _sampling(self) -> SamplingParams:
        """The critiques sampled beside the greedy one."""
        return SamplingParams(n=self.samples - 1, temperature=self.temperature, max_tokens=self.max_tokens,
                              seed=self.seed)

    @torch.inference_mode()
    def _verdict_probabilities(self, chats: list[list[dict]], texts: list[str]) -> list[list[float]]:
        """P(correct) at each verdict of each text, teacher-forced after its prompt."""
        processor, model = self.policy.processor, self.policy.model
        tok = self.policy.tokenizer
        examples = [encode_chat(chat, text, processor) for chat, text in zip(chats, texts)]
        batch = collate(examples, processor, model.config).to(self.policy.device)
        batch.pop("labels")
        logits = model(**batch).logits.float()
        out = []
        for row, (ex, text) in enumerate(zip(examples, texts)):
            target = ex.ids[ex.n_prompt :]
            found = []
            for at in verdict_offsets(text, self.layout):
                right = tok.encode(text[:at] + self._words[0], add_special_tokens=False)
                wrong = tok.encode(text[:at] + self._words[1], add_special_tokens=False)
                d = next((i for i, (a, b) in enumerate(zip(right, wrong)) if a != b), None)
                if d is None or target[:d] != right[:d]:  # the text tokenises otherwise before its verdict
                    break
                pair = logits[row, ex.n_prompt + d - 1, [right[d], wrong[d]]].softmax(-1)
                found.append(float(pair[0]))
            out.append(found)
        return out

    def close(self) -> None:
        self.policy = None  # type: ignore[assignment]
