"""Continuous batching for a local transformers model (the hf backend's decoder).

Why not `model.generate`: annotation and search ask for continuations whose
lengths differ a lot (a rollout from a deep prefix is a few tokens, one from
the root dozens), and `generate` runs a batch until its longest row ends, so
the slots of the short rows idle. It also prefills each of a prompt's n
samples separately, image and all, which on the tiny policy is most of the
time. Here a prompt is prefilled once and its cache copied to its samples;
rows leave the batch as they end, and waiting prompts join as room frees.

Prompts that share a beginning share its prefill too: a job names how much of
its text is the shared part (the hf backend: the rendered chat prompt, image
included, before a partial answer), and that part's keys and values are kept
in a small least-recently-used cache, so the MC queries of one problem
prefill only their own steps, as vLLM's prefix caching does.

Rows are left-padded in one key/value cache; a joining group is padded (or
the batch is) so that all rows end at the same column; a row prefilled from a
cached prefix may have padding between the prefix and its own tokens. Each row carries its
next position (for Qwen2-VL's M-RoPE, its text position plus the image's
offset from `get_rope_index`), so padding never shifts a position. Each
sampled row draws its noise from its own generator (`mmprm.policy.sampling`):
what a prompt gets depends on its seed alone, not on what shares its batch.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import torch
from PIL import Image
from transformers import DynamicCache

from mmprm.io import load_image
from mmprm.policy.base import SamplingParams
from mmprm.policy.sampling import choose_tokens, row_generator


@dataclass
class GeneratedText:
    """One generated completion. `stop_reason` is the stop string that ended it
    (None when it ended at end-of-sequence or at max_tokens), as vLLM reports it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    stop_reason: str | None = None


@dataclass
class Job:
    """One prompt and the samples asked of it; `outputs` fill in as rows end."""

    key: object
    text: str
    images: list[str]
    params: SamplingParams
    seeds: list[int]  # one per distinct sample (one for greedy decoding: its samples are all the same)
    shared: int = 0  # characters of `text` other jobs may begin with too (0: none); their prefill is cached
    outputs: list[GeneratedText | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outputs = [None] * len(self.seeds)

    @property
    def done(self) -> bool:
        return all(o is not None for o in self.outputs)


@dataclass
class _Prefix:
    """A shared prompt beginning, prefilled: its text tokens (before image
    expansion), each layer's keys and values [1, heads, length, dim], the position
    after it and the logits there (for a job that is all prefix)."""

    ids: list[int]
    layers: list[tuple[torch.Tensor, torch.Tensor]]
    length: int
    next_position: int
    logits: torch.Tensor


@dataclass
class _Group:
    """Jobs prefilled together, ready to join the batch: one row per job."""

    jobs: list[Job]
    cache: DynamicCache
    mask: torch.Tensor
    positions: torch.Tensor
    logits: torch.Tensor
    lengths: list[int]


@dataclass
class _Row:
    job: Job
    sample: int
    prompt_tokens: int
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)


class ContinuousBatcher:
    """Decodes `Job`s with up to `max_rows` samples in flight.

    `add` queues a job; each `step` admits waiting jobs while there is room,
    decodes one token for every row, and returns the jobs that finished. A
    job's samples always decode in one batch, so a job with more samples than
    `max_rows` runs alone, over the limit. Models whose layers are not all
    attention (a key/value cache per layer) are not supported.
    """

    def __init__(self, model, processor, tokenizer, eos: list[int], device: torch.device, *,
                 multimodal: bool, max_rows: int, prefixes: OrderedDict | None = None, prefix_cache: int = 0):
        self.model, self.processor, self.tokenizer = model, processor, tokenizer
        # shared prompt beginnings, most recently used last; the owner may pass one to share across batchers
        self.prefixes: OrderedDict[tuple, _Prefix] = OrderedDict() if prefixes is None else prefixes
        self.prefix_cache = prefix_cache  # how many to keep (0: no prefix caching)
        self.eos, self.device, self.multimodal, self.max_rows = set(eos), device, multimodal, max_rows
        # free rows that make a prefill worth its call (//8 and //2 were slower: benchmarks/annotation_overhead.py)
        self.join_at = max(1, max_rows // 4)
        forward = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward else "past_key_values"  # renamed in transformers 5
        inner = getattr(model, "model", None)
        self._rope_index = getattr(inner, "get_rope_index", None)  # Qwen2-VL family: 3-D positions
        self._rope_args = set(inspect.signature(self._rope_index).parameters) if self._rope_index else set()
        # prefills need only the last position's logits, where the model can be told so
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}
        self.peak_rows = 0  # the most rows decoded in one step
        self.waiting: deque[Job] = deque()
        self.rows: list[_Row] = []
        self._cache: DynamicCache | None = None  # every row's keys and values, left-padded
        self._mask = self._positions = self._last = None

    def add(self, job: Job) -> None:
        self.waiting.append(job)

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.rows

    @torch.inference_mode()
    def step(self) -> list[Job]:
        """One decoding step for the batch (after admitting what fits); the jobs it completed."""
        logits = self._decode() if self.rows else None
        joined = self._admit()
        if joined is not None:
            logits = joined if logits is None else torch.cat([logits, joined])
        if logits is None:
            return []
        self.peak_rows = max(self.peak_rows, len(self.rows))
        chosen = choose_tokens(logits, self.rows).tolist()
        finished: list[Job] = []
        keep: list[int] = []
        for i, (row, token) in enumerate(zip(self.rows, chosen)):
            row.tokens.append(token)
            params = row.job.params
            if token in self.eos or len(row.tokens) >= params.max_tokens or self._hit_stop(row.tokens, params):
                row.job.outputs[row.sample] = self._result(row)
                if row.job.done:
                    finished.append(row.job)
            else:
                keep.append(i)
        self._last = torch.tensor(chosen, device=self.device)
        if len(keep) < len(self.rows):
            self._select(keep)
        return finished

    # ---- decoding -----------------------------------------------------------

    def _decode(self) -> torch.Tensor:
        """Feeds each row's last token; its logits for the next one."""
        self._mask = torch.cat([self._mask, self._mask.new_ones(len(self.rows), 1)], dim=1)
        out = self.model(input_ids=self._last[:, None], attention_mask=self._mask,
                         position_ids=self._positions[:, None], use_cache=True, **{self._cache_arg: self._cache})
        self._positions = self._positions + 1
        return out.logits[:, -1].float()

    def _admit(self) -> torch.Tensor | None:
        """Prefills the waiting jobs that fit (each once, then copied to its samples) and joins them to the batch."""
        room = self.max_rows - len(self.rows)
        if not self.waiting or (self.rows and room < max(len(self.waiting[0].seeds), self.join_at)):
            return None
        jobs: list[Job] = []
        while self.waiting and (len(self.waiting[0].seeds) <= room or not (jobs or self.rows)):
            jobs.append(self.waiting.popleft())
            room -= len(jobs[-1].seeds)
        if not jobs:
            return None
        logits = []
        for group in self._prefill(jobs):
            copies = torch.tensor([j for j, job in enumerate(group.jobs) for _ in job.seeds], device=self.device)
            group.cache.batch_select_indices(copies)
            self._join(group.cache, group.mask[copies], group.positions[copies])
            self.rows.extend(_Row(job, s, group.lengths[j], row_generator(seed, job.params, self.device))
                             for j, job in enumerate(group.jobs) for s, seed in enumerate(job.seeds))
            logits.append(group.logits[copies])
        return torch.cat(logits)

    def _prefill(self, jobs: list[Job]) -> list[_Group]:
        """The jobs' prompts prefilled: those with a shared beginning from the prefix
        cache (filled first where missing), the rest whole."""
        whole, cached = [], []
        if self.prefix_cache:
            self._fill_prefixes([job for job in jobs if job.shared])
            for job in jobs:
                suffix = self._suffix(job)
                (whole if suffix is None else cached).append((job, suffix))
        else:
            whole = [(job, None) for job in jobs]
        groups = []
        if whole:
            groups.append(self._prefill_whole([job for job, _ in whole]))
        if ready := [(job, suffix) for job, suffix in cached if not suffix]:  # all prefix: nothing to run
            groups.append(self._from_prefixes(ready))
        if going := [(job, suffix) for job, suffix in cached if suffix]:
            groups.append(self._from_prefixes(going))
        return groups

    def _prefill_whole(self, jobs: list[Job]) -> _Group:
        cache, mask, positions, logits, lengths = self._run_prompts([job.text for job in jobs],
                                                                    [job.images for job in jobs])
        return _Group(jobs, cache, mask, positions, logits, lengths)

    def _run_prompts(self, texts: list[str], images: list[list[str]]):
        """One left-padded prefill of whole prompts: cache, mask, next positions, last logits, lengths."""
        opened: dict[str, Image.Image] = {}
        kwargs = {"padding": True, "return_tensors": "pt", "add_special_tokens": False}
        if self.multimodal:
            pics = [load_image(ref, opened) for refs in images for ref in refs]
            inputs = self.processor(text=texts, images=pics or None, **kwargs)
        else:
            inputs = self.tokenizer(texts, **kwargs)
        inputs = inputs.to(self.device)
        mask = inputs["attention_mask"]
        lengths = mask.sum(dim=1)
        if self._rope_index is not None and inputs.get("image_grid_thw") is not None:
            args = {k: v for k, v in inputs.items() if k in self._rope_args and k != "input_ids"}
            positions, deltas = self._rope_index(inputs["input_ids"], **args)
            following = lengths + deltas.view(-1).to(lengths)
        else:
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            following = lengths
        cache = DynamicCache()
        out = self.model(**inputs, position_ids=positions, use_cache=True, **self._last_only,
                         **{self._cache_arg: cache})
        return cache, mask, following, out.logits[:, -1].float(), lengths.tolist()

    # ---- the prefix cache -----------------------------------------------------

    @staticmethod
    def _prefix_key(job: Job) -> tuple:
        return job.text[: job.shared], tuple(job.images)

    def _fill_prefixes(self, jobs: list[Job]) -> None:
        """Prefills (in one call) the shared beginnings not yet cached, and marks the rest as just used."""
        missing: dict[tuple, None] = {}
        for job in jobs:
            key = self._prefix_key(job)
            if key in self.prefixes:
                self.prefixes.move_to_end(key)
            else:
                missing[key] = None
        if not missing:
            return
        keys = list(missing)
        cache, mask, following, logits, lengths = self._run_prompts([t for t, _ in keys], [list(r) for _, r in keys])
        width = mask.shape[1]
        for i, key in enumerate(keys):
            start = width - lengths[i]  # left padding
            layers = [(layer.keys[i: i + 1, :, start:].clone(), layer.values[i: i + 1, :, start:].clone())
                      for layer in cache.layers]
            self.prefixes[key] = _Prefix(self._text_ids(key[0]), layers, lengths[i], int(following[i]), logits[i])
        while len(self.prefixes) > self.prefix_cache:
            self.prefixes.popitem(last=False)

    def _text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _suffix(self, job: Job) -> list[int] | None:
        """The job's tokens after its cached beginning; None when it has none cached, or
        when its text does not tokenise as the beginning's tokens followed by more."""
        prefix = self.prefixes.get(self._prefix_key(job)) if job.shared else None
        if prefix is None:
            return None
        ids = self._text_ids(job.text)
        if ids[: len(prefix.ids)] != prefix.ids:  # a token merges across the boundary
            return None
        return ids[len(prefix.ids):]

    def _from_prefixes(self, items: list[tuple[Job, list[int]]]) -> _Group:
        """A group from cached beginnings: each row is [padding, prefix, padding, suffix];
        the suffixes (if any) run in one call on top of the cached keys and values."""
        prefixes = [self.prefixes[self._prefix_key(job)] for job, _ in items]
        before = max(p.length for p in prefixes)
        after = max(len(suffix) for _, suffix in items)
        layers = [(torch.cat([_pad(p.layers[n][0], before) for p in prefixes]),
                   torch.cat([_pad(p.layers[n][1], before) for p in prefixes]))
                  for n in range(len(prefixes[0].layers))]
        cache = DynamicCache(ddp_cache_data=layers)
        rows = len(items)
        mask = torch.zeros(rows, before + after, dtype=torch.long, device=self.device)
        for i, ((_, suffix), p) in enumerate(zip(items, prefixes)):
            mask[i, before - p.length: before] = 1
            mask[i, before + after - len(suffix):] = 1
        lengths = [p.length + len(suffix) for (_, suffix), p in zip(items, prefixes)]
        following = torch.tensor([p.next_position + len(suffix) for (_, suffix), p in zip(items, prefixes)],
                                 device=self.device)
        if not after:
            logits = torch.stack([p.logits for p in prefixes])
        else:
            pad = self.tokenizer.pad_token_id or 0
            ids = torch.tensor([[pad] * (after - len(s)) + s for _, s in items], device=self.device)
            offsets = torch.arange(after, device=self.device) - after
            positions = (following[:, None] + offsets).clamp(min=0)
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             **self._last_only, **{self._cache_arg: cache})
            logits = out.logits[:, -1].float()
        return _Group([job for job, _ in items], cache, mask, following, logits, lengths)

    def _join(self, cache: DynamicCache, mask: torch.Tensor, positions: torch.Tensor) -> None:
        """Appends rows to the batch, left-padding whichever side is shorter."""
        if not self.rows:
            self._cache, self._mask, self._positions = cache, mask, positions
            return
        width = max(self._mask.shape[1], mask.shape[1])
        for layer, joining in zip(self._cache.layers, cache.layers):  # DynamicLayer: keys, values [rows, heads, T, dim]
            layer.keys = torch.cat([_pad(layer.keys, width), _pad(joining.keys, width)])
            layer.values = torch.cat([_pad(layer.values, width), _pad(joining.values, width)])
        self._mask = torch.cat([_pad(self._mask, width), _pad(mask, width)])
        self._positions = torch.cat([self._positions, positions])

    def _select(self, keep: list[int]) -> None:
        """Drops the ended rows, and the columns now padding in every row."""
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self._cache = self._mask = self._positions = self._last = None
            return
        index = torch.tensor(keep, device=self.device)
        mask = self._mask[index]
        first = int(mask.any(dim=0).nonzero()[0])
        self._mask = mask[:, first:]
        for layer in self._cache.layers:
            layer.keys, layer.values = layer.keys[index, :, first:], layer.values[index, :, first:]
        self._positions, self._last = self._positions[index], self._last[index]

    # ---- ending a row ---------------------------------------------------------

    def _hit_stop(self, tokens: list[int], params: SamplingParams) -> bool:
        if not params.stop:
            return False
        # enough tokens to hold the longest stop string, with room for skipped special tokens (no length)
        tail = self.tokenizer.decode(tokens[-(4 * max(map(len, params.stop)) + 64):], skip_special_tokens=True)
        return any(s in tail for s in params.stop)

    def _result(self, row: _Row) -> GeneratedText:
        tokens = row.tokens
        ended = tokens[-1] in self.eos
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        hits = [(text.find(s), s) for s in row.job.params.stop if s in text]
        if hits:
            cut, stop = min(hits)
            return GeneratedText(text[:cut], row.prompt_tokens, len(tokens), "stop", stop)
        return GeneratedText(text, row.prompt_tokens, len(tokens), "stop" if ended else "length")


def _pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pads the sequence dimension (dim 1 of a mask, dim 2 of keys and values) with zeros to `width`."""
    dim = 1 if t.dim() == 2 else 2
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)
