"""Policy backend for a local transformers checkpoint (`hf:PATH`).

One class serves image-text-to-text models (the tiny policy, Qwen2-VL,
Qwen2.5-VL, anything AutoProcessor loads) and text-only causal LMs. Decoding
is continuous batching (`mmprm.policy.engine`): up to `batch_size` samples in
flight, each prompt prefilled once for all its samples, new prompts joining as
rows end. A partial solution is continued by appending its text after the chat
template's generation prompt, which works with any chat template.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from pathlib import Path

import torch

from mmprm.backbone import is_multimodal, load_backbone, tokenizer_of
from mmprm.grading.extract import extract_answer
from mmprm.policy.base import Continuation, Policy, Request, SampleStream, SamplingParams
from mmprm.policy.engine import ContinuousBatcher, GeneratedText, Job
from mmprm.policy.prompt import build_messages, flatten_content
from mmprm.seeds import derive_seed
from mmprm.steps import parse_output

STREAMING = ("auto", "continuous", "rounds")  # HFPolicy(streaming=...): how a stream's requests join the batch


class HFPolicy(Policy):
    """Samples from a local checkpoint, continuously batched (mmprm.policy.engine)."""

    name = "hf"

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        batch_size: int = 16,
        prefix_cache: int = 32,
        streaming: str = "auto",
        trust_remote_code: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if streaming not in STREAMING:
            raise ValueError(f"streaming must be one of {', '.join(STREAMING)}, got {streaming!r}")
        self.path = str(path)
        self.name = f"hf:{self.path}"
        self.device = torch.device(device)
        self.batch_size = batch_size
        if streaming == "auto":
            streaming = "continuous" if self.device.type == "cuda" else "rounds"
        self.streaming = streaming  # how a stream's requests join the batch (HFStream)
        if prefix_cache < 0:
            raise ValueError(f"prefix_cache must be 0 (off) or more, got {prefix_cache}")
        self.prefix_cache = prefix_cache  # prompts whose prefill is kept (mmprm.policy.engine); 0: none
        self._prefixes: OrderedDict = OrderedDict()  # shared by this policy's batchers
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
        outs = self.run_jobs([self.request_job(i, r, params) for i, r in enumerate(requests)])
        return [[_continuation(g, r) for g in gens] for r, gens in zip(requests, outs)]

    def stream(self) -> SampleStream:
        return HFStream(self)

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
        seeds = seeds or [params.seed] * len(batch)
        return self.run_jobs([self.job(i, m, params, s, continue_final_message)
                              for i, (m, s) in enumerate(zip(batch, seeds, strict=True))])

    def generate_text(self, prompts: list[str], params: SamplingParams) -> list[list[GeneratedText]]:
        """`params.n` completions of each raw text prompt (no chat template), as /v1/completions does."""
        return self.run_jobs([self.text_job(i, p, params) for i, p in enumerate(prompts)])

    def job(self, key: object, messages: list[dict], params: SamplingParams, seed: int | None,
            continue_final_message: bool) -> Job:
        """A decoding job for the engine: the rendered prompt, its images, one seed per distinct sample."""
        params.check()
        prompt, partial, refs = self._render(messages, continue_final_message)
        return Job(key, _not_empty(prompt + partial), refs, params, _row_seeds(seed, params), shared=len(prompt))

    def request_job(self, key: object, request: Request, params: SamplingParams) -> Job:
        """A decoding job for a policy request: its prefix continued, its own seed before `params.seed`."""
        seed = request.seed if request.seed is not None else params.seed
        return self.job(key, build_messages(request.problem, request.prefix_steps), params, seed,
                        continue_final_message=True)

    def text_job(self, key: object, prompt: str, params: SamplingParams) -> Job:
        """A decoding job for a raw prompt (no chat template)."""
        params.check()
        return Job(key, _not_empty(prompt), [], params, _row_seeds(params.seed, params))

    def batcher(self) -> ContinuousBatcher:
        return ContinuousBatcher(self.model, self.processor, self.tokenizer, self._eos, self.device,
                                 multimodal=self.multimodal, max_rows=self.batch_size,
                                 prefixes=self._prefixes, prefix_cache=self.prefix_cache)

    def run_jobs(self, jobs: list[Job]) -> list[list[GeneratedText]]:
        """Decodes `jobs` together; each one's `params.n` completions, in order."""
        engine = self.batcher()
        for job in jobs:
            engine.add(job)
        while not engine.idle:
            engine.step()
        return [all_samples(job) for job in jobs]

    def _render(self, messages: list[dict], continue_final: bool) -> tuple[str, str, list[str]]:
        """The chat prompt (shared by every continuation of it), the partial answer to continue, the image refs."""
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
        return template, partial, refs


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


class HFStream(SampleStream):
    """Requests decoded by one continuous batcher, joining it in one of two ways
    (the policy's `streaming`):

    - continuous: a request submitted while others decode joins their batch as
      soon as rows free, and `completed` returns at the first that finishes.
      Pays where a decoding step costs about the same for few rows as for many
      (a GPU): the batch stays full.
    - rounds: what was submitted since the last `completed` decodes as one
      batch, run until all of it is done. Pays on a CPU, where every row costs
      its share of a step, so a full batch buys nothing, while each joining
      prefill costs a fixed overhead (the image encoder's call above all):
      few large prefills beat many small ones. Measured in
      benchmarks/annotation_overhead.py. "auto" is continuous on CUDA, else rounds.
    """

    def __init__(self, policy: HFPolicy):
        super().__init__(policy)
        self.engine = policy.batcher()
        self.requests: dict[object, Request] = {}

    def submit(self, key: object, request: Request, params: SamplingParams) -> None:
        self.engine.add(self.policy.request_job(key, request, params))
        self.requests[key] = request

    def __len__(self) -> int:
        return len(self.requests)

    def completed(self) -> list[tuple[object, list[Continuation]]]:
        if self.requests and self.engine.idle:
            raise RuntimeError("requests were lost when a decoding step failed; open a new stream")
        done = []
        while not self.engine.idle:
            for job in self.engine.step():
                request = self.requests.pop(job.key)
                done.append((job.key, [_continuation(g, request) for g in all_samples(job)]))
            if done and self.policy.streaming == "continuous":
                break
        return done

    def close(self) -> None:
        self.engine = self.policy.batcher()
        self.requests.clear()


def _not_empty(prompt: str) -> str:
    if not prompt:
        raise ValueError("the prompt is empty: there is nothing to continue")
    return prompt


def _row_seeds(seed: int | None, params: SamplingParams) -> list[int]:
    """One seed per distinct sample: greedy samples are all the same, so greedy decoding runs one row."""
    if params.temperature == 0:
        return [0]
    base = seed if seed is not None else random.SystemRandom().getrandbits(63)
    return [derive_seed(base, k) for k in range(params.n)]


def all_samples(job: Job) -> list[GeneratedText]:
    """A finished job's `params.n` completions (greedy decoding ran one row: it is copied)."""
    return [job.outputs[k % len(job.outputs)] for k in range(job.params.n)]


def _continuation(g: GeneratedText, request: Request) -> Continuation:
    return Continuation(
        text=g.text,
        steps=parse_output(g.text).steps,
        answer=extract_answer(g.text, request.problem.choices),
        finished=g.finish_reason == "stop" and g.stop_reason is None,
        prompt_tokens=g.prompt_tokens,
        completion_tokens=g.completion_tokens,
    )
