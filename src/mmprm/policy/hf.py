"""Policy backend for a local transformers checkpoint (`hf:PATH`).

One class serves image-text-to-text models (the tiny policy, Qwen2-VL,
Qwen2.5-VL, anything AutoProcessor loads) and text-only causal LMs. Requests
are expanded into rows (one per sample), sorted by prompt length and run in
left-padded batches, so a batch gives the same greedy output as one row at
a time. A partial solution is continued by appending its text after the
chat template's generation prompt, which works with any chat template.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers import LogitsProcessor, LogitsProcessorList

from mmprm.backbone import is_multimodal, load_backbone, tokenizer_of
from mmprm.grading.extract import extract_answer
from mmprm.io import load_image
from mmprm.policy.base import Continuation, Policy, Request, SamplingParams
from mmprm.policy.prompt import build_messages, flatten_content
from mmprm.seeds import derive_seed
from mmprm.steps import parse_output


@dataclass
class GeneratedText:
    """One generated completion. `stop_reason` is the stop string that ended it
    (None when it ended at end-of-sequence or at max_tokens), as vLLM reports it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    stop_reason: str | None = None


class HFPolicy(Policy):
    """Samples from a local checkpoint with `transformers.generate`."""

    name = "hf"

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        batch_size: int = 16,
        trust_remote_code: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.path = str(path)
        self.name = f"hf:{self.path}"
        self.device = torch.device(device)
        self.batch_size = batch_size
        if dtype is None:  # bf16 matmuls are slow on most CPUs
            dtype = torch.float32 if self.device.type == "cpu" else "auto"
        self.model, self.processor = load_backbone(self.path, trust_remote_code=trust_remote_code, dtype=dtype)
        self.multimodal = is_multimodal(self.processor)
        self.tokenizer = tokenizer_of(self.processor)
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._eos = _eos_ids(self.model, self.tokenizer)

    # ---- the Policy interface -------------------------------------------

    def sample_batch(self, requests: list[Request], params: SamplingParams) -> list[list[Continuation]]:
        batch = [build_messages(r.problem, r.prefix_steps) for r in requests]
        seeds = [r.seed if r.seed is not None else params.seed for r in requests]
        outs = self.generate_messages(batch, params, continue_final_message=True, seeds=seeds)
        return [[_continuation(g, r) for g in gens] for r, gens in zip(requests, outs)]

    # ---- lower level: chat messages and raw prompts -----------------------

    def generate_messages(
        self, batch: list[list[dict]], params: SamplingParams, *, continue_final_message: bool,
        seeds: list[int | None] | None = None,
    ) -> list[list[GeneratedText]]:
        """`params.n` completions of each conversation, in order.

        Messages follow `mmprm.policy.prompt` (image parts `{"type": "image",
        "image": REF}`, REF an absolute path or a data URI; OpenAI `image_url`
        parts are accepted too). With `continue_final_message`, a final
        assistant message is continued rather than answered. `seeds` (one per
        conversation; default `params.seed`) make each conversation's samples
        reproducible whatever else is in the batch.
        """
        prompts, images = [], []
        for messages in batch:
            text, refs = self._render(messages, continue_final_message)
            prompts.append(text)
            images.append(refs)
        return self._generate(prompts, images, params, seeds)

    def generate_text(self, prompts: list[str], params: SamplingParams) -> list[list[GeneratedText]]:
        """`params.n` completions of each raw text prompt (no chat template), as /v1/completions does."""
        return self._generate(list(prompts), [[] for _ in prompts], params)

    def _render(self, messages: list[dict], continue_final: bool) -> tuple[str, list[str]]:
        messages = [_normalise(m) for m in messages]
        refs = [p["image"] for m in messages if isinstance(m["content"], list) for p in m["content"]
                if p["type"] == "image"]
        if refs and not self.multimodal:
            raise ValueError(
                f"{self.path} is a text-only model; it cannot read the {len(refs)} image(s) in this request. "
                "Use an image-text-to-text checkpoint (e.g. Qwen2-VL) or problems without images."
            )
        partial = ""
        if continue_final and messages and messages[-1]["role"] == "assistant":
            partial = flatten_content(messages[-1]["content"])
            messages = messages[:-1]
        if not self.multimodal:  # text-only chat templates expect string content
            messages = [{**m, "content": flatten_content(m["content"])} for m in messages]
        template = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return template + partial, refs

    def _generate(self, prompts: list[str], images: list[list[str]], params: SamplingParams,
                  seeds: list[int | None] | None = None) -> list[list[GeneratedText]]:
        params.check()
        copies = 1 if params.temperature == 0 else params.n  # greedy samples are all the same
        seeds = seeds or [params.seed] * len(prompts)
        unseeded = random.SystemRandom()
        row_seeds = {(i, k): derive_seed(seed, k) if seed is not None else unseeded.getrandbits(63)
                     for i, seed in enumerate(seeds) for k in range(copies)}
        rows = [(i, k) for i in range(len(prompts)) for k in range(copies)]
        # Similar lengths share a batch: less padding to compute over.
        rows.sort(key=lambda r: len(prompts[r[0]]))
        opened: dict[str, Image.Image] = {}
        results: list[list[GeneratedText | None]] = [[None] * copies for _ in prompts]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            texts = [prompts[i] for i, _ in chunk]
            pics = [load_image(ref, opened) for i, _ in chunk for ref in images[i]]
            for (i, k), gen in zip(chunk, self._run(texts, pics, params, [row_seeds[r] for r in chunk])):
                results[i][k] = gen
        return [[gens[k % copies] for k in range(params.n)] for gens in results]

    @torch.inference_mode()
    def _run(self, texts: list[str], pics: list[Image.Image], params: SamplingParams,
             row_seeds: list[int]) -> list[GeneratedText]:
        kwargs = {"padding": True, "return_tensors": "pt", "add_special_tokens": False}
        if self.multimodal:
            inputs = self.processor(text=texts, images=pics or None, **kwargs)
        else:
            inputs = self.tokenizer(texts, **kwargs)
        inputs = inputs.to(self.device)
        # Sampling is RowSampler's Gumbel-max over each row's own noise: the decoding itself is greedy.
        processors = [RowSampler(row_seeds, params, self.device)] if params.temperature > 0 else []
        out = self.model.generate(
            **inputs,
            do_sample=False, temperature=None, top_p=None, top_k=None,
            logits_processor=LogitsProcessorList(processors),
            max_new_tokens=params.max_tokens,
            eos_token_id=self._eos,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=params.stop or None,
            tokenizer=self.tokenizer if params.stop else None,
        )
        width = inputs["input_ids"].shape[1]
        prompt_lens = inputs["attention_mask"].sum(dim=1).tolist()
        return [self._decode(row[width:].tolist(), n, params) for row, n in zip(out, prompt_lens)]

    def _decode(self, tokens: list[int], prompt_tokens: int, params: SamplingParams) -> GeneratedText:
        ended = next((j for j, t in enumerate(tokens) if t in self._eos), None)
        if ended is not None:
            tokens = tokens[: ended + 1]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        hits = [(text.find(s), s) for s in params.stop if s in text]
        if hits:
            cut, stop = min(hits)
            return GeneratedText(text[:cut], prompt_tokens, len(tokens), "stop", stop)
        reason = "stop" if ended is not None else "length"
        return GeneratedText(text, prompt_tokens, len(tokens), reason)


class RowSampler(LogitsProcessor):
    """Temperature, top-k and top-p sampling with one random stream per row.

    Each row adds Gumbel noise drawn from its own generator (seeded per
    request and sample) to its filtered, tempered logits, and greedy decoding
    takes the argmax: exactly a draw from the filtered distribution, and one
    that depends on the row's seed alone, not on what else is in the batch,
    so a resumed run samples what an uninterrupted one did.
    """

    def __init__(self, seeds: list[int], params: SamplingParams, device: torch.device):
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.temperature, self.top_k, self.top_p = params.temperature, params.top_k, params.top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        vocab = logits.shape[-1]
        if 0 < self.top_k < vocab:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, index = logits.sort(dim=-1, descending=True)
            probs = ordered.softmax(dim=-1)
            before = probs.cumsum(dim=-1) - probs  # probability mass ranked above each token
            drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, index, before >= self.top_p)
            logits = logits.masked_fill(drop, float("-inf"))
        uniform = torch.stack([torch.rand(vocab, generator=g, device=logits.device) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-7)))
        return logits + gumbel


def _eos_ids(model, tokenizer) -> list[int]:
    """End-of-turn tokens: the generation config's, else the tokenizer's EOS."""
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    if not eos:
        raise ValueError("the model defines no end-of-sequence token (generation_config.eos_token_id)")
    return eos


def _normalise(message: dict) -> dict:
    """OpenAI `image_url` parts as `{"type": "image", "image": REF}`."""
    content = message["content"]
    if isinstance(content, str):
        return message
    parts = []
    for p in content:
        if p.get("type") == "image_url":
            url = p["image_url"]
            parts.append({"type": "image", "image": url["url"] if isinstance(url, dict) else url})
        else:
            parts.append(p)
    return {**message, "content": parts}


def _continuation(g: GeneratedText, request: Request) -> Continuation:
    return Continuation(
        text=g.text,
        steps=parse_output(g.text).steps,
        answer=extract_answer(g.text, request.problem.choices),
        finished=g.finish_reason == "stop" and g.stop_reason is None,
        prompt_tokens=g.prompt_tokens,
        completion_tokens=g.completion_tokens,
    )
