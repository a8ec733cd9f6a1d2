"""Choosing each decoding row's next token (the hf backend's engine uses it).

Every sampled row draws its noise from its own generator, seeded per sample, so what a
prompt gets depends on its seed alone, not on what shares its batch; the filters
(temperature, top-k, top-p) are applied row by row for the same reason.
"""

from __future__ import annotations

import torch

from mmprm.policy.base import SamplingParams


def choose_tokens(logits: torch.Tensor, rows: list) -> torch.Tensor:
    """Each row's next token: the argmax for greedy rows; for sampled rows a
    draw from the tempered, top-k and top-p filtered distribution, as the
    argmax of the filtered logits plus Gumbel noise from the row's own generator."""
    chosen = logits.argmax(dim=-1)
    sampled = [i for i, r in enumerate(rows) if r.generator is not None]
    if sampled:
        index = torch.tensor(sampled, device=logits.device)
        params = [rows[i].job.params for i in sampled]
        noisy = filtered_logits(logits[index], params) + gumbel_noise([rows[i].generator for i in sampled],
                                                                      logits.shape[-1], logits.device)
        chosen[index] = noisy.argmax(dim=-1)
    return chosen


def filtered_logits(logits: torch.Tensor, params: list[SamplingParams]) -> torch.Tensor:
    """Tempered logits with the tokens outside each row's top-k and top-p set to -inf."""
    vocab = logits.shape[-1]
    logits = logits / torch.tensor([[p.temperature] for p in params], device=logits.device)
    if not any(0 < p.top_k < vocab or p.top_p < 1 for p in params):
        return logits
    top_k = torch.tensor([p.top_k if 0 < p.top_k < vocab else vocab for p in params], device=logits.device)
    ordered, index = logits.sort(dim=-1, descending=True)
    kth = ordered.gather(1, (top_k - 1)[:, None])
    logits = logits.masked_fill(logits < kth, float("-inf"))
    top_p = torch.tensor([[p.top_p] for p in params], device=logits.device)
    if (top_p < 1).any():
        probs = logits.gather(1, index).softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability mass ranked above each token
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, index, (before >= top_p) & (top_p < 1))
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def gumbel_noise(generators: list[torch.Generator], vocab: int, device: torch.device) -> torch.Tensor:
    uniform = torch.stack([torch.rand(vocab, generator=g, device=device) for g in generators])
    return -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-7)))


def row_generator(seed: int, params: SamplingParams, device: torch.device) -> torch.Generator | None:
    return torch.Generator(device=device).manual_seed(seed) if params.temperature > 0 else None
