"""A published PRM already served by vLLM, through its pooling endpoint
(`--prm vllm:[SCHEME:]URL#MODEL`), so a user's existing deployment plugs in.

vLLM serves Qwen2.5-Math-PRM with its process-reward model class and STEP
pooling (one row of class probabilities per `<extra_0>`), and Math-Shepherd
as a pooling model whose STEP pooler reads the `+`/`-` token probabilities at
each `ки` (`step_tag_id`, `returned_token_ids`: positive first). This client
sends each candidate in its scheme's own layout, the one local scoring uses
(`mmprm.prm.formats`): Qwen2.5-Math-PRM as chat messages (the server applies
the model's chat template), Math-Shepherd as plain text. Each candidate is one
request; they go concurrently, and vLLM batches them. A server whose pooler is
not set up for steps answers a row per token, not per step: that is refused
with the flag to set, never read as scores. docs/serving.md has the commands.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx

from mmprm.http import Retrying
from mmprm.prm.base import PRM
from mmprm.prm.formats import math_shepherd_text, qwen_prm_messages, without_tag
from mmprm.prm.schemes import get_scheme
from mmprm.types import Problem

API_KEY_ENV = "MMPRM_VLLM_API_KEY"
SCHEMES = ("qwen2.5-math-prm", "math-shepherd")  # the layouts vLLM's STEP pooling can read


class VLLMPoolingPRM(PRM):
    """Scores from `model` on the vLLM server at `base_url` (its root, e.g. `http://host:8000`)."""

    bounded = True

    def __init__(self, base_url: str, model: str, scheme: str = "qwen2.5-math-prm", *, api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 5, concurrency: int = 16):
        if scheme not in SCHEMES:
            raise ValueError(f"vLLM's pooling endpoint serves PRMs of the schemes {', '.join(SCHEMES)}, "
                             f"not {scheme!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.url = base_url.rstrip("/").removesuffix("/v1")
        self.model, self.scheme = model, get_scheme(scheme)
        self.name = f"vllm:{scheme}:{self.url}#{model}"
        self.positive_column = 1 if self.scheme.readout == "class" else 0  # class 1; else returned_token_ids[0]
        key = api_key or os.environ.get(API_KEY_ENV)
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {key}"} if key else {},
                                    limits=httpx.Limits(max_connections=concurrency))
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="vllm-prm")
        self._retrying = Retrying("vLLM server", max_retries=max_retries)

    @classmethod
    def from_spec(cls, rest: str, **options) -> VLLMPoolingPRM:
        """`[SCHEME:]URL#MODEL` (the part of the spec after `vllm:`); the scheme defaults to qwen2.5-math-prm."""
        first, sep, after = rest.partition(":")
        scheme, target = (first, after) if sep and first in SCHEMES else ("qwen2.5-math-prm", rest)
        url, hash_, model = target.partition("#")
        if not hash_ or not model or not url.startswith(("http://", "https://")):
            raise ValueError(f"vllm PRM spec 'vllm:{rest}' is not vllm:[SCHEME:]URL#MODEL "
                             f"(SCHEME one of {', '.join(SCHEMES)})")
        return cls(url, model, scheme, **options)

    def score(self, problem: Problem, candidates: list[list[str]]) -> list[list[float]]:
        return self.score_many([(problem, candidates)])[0]

    def score_many(self, items: list[tuple[Problem, list[list[str]]]]) -> list[list[list[float]]]:
        flat = [(problem, steps) for problem, cands in items for steps in cands]
        scores = iter(list(self._pool.map(lambda job: self._score_one(*job), flat)))
        return [[next(scores) for _ in cands] for _, cands in items]

    def _score_one(self, problem: Problem, steps: list[str]) -> list[float]:
        if not steps:
            return []
        steps = without_tag(self.scheme, steps)
        body: dict = {"model": self.model}
        if self.scheme.name == "qwen2.5-math-prm":
            body.update(messages=qwen_prm_messages(problem, steps), add_generation_prompt=False)
        else:
            body["input"] = math_shepherd_text(problem, steps)
        data = self._retrying.post(self._client, f"{self.url}/pooling", body, _pooling_problem)
        rows = data["data"][0]["data"]
        if len(rows) != len(steps) or any(not isinstance(r, list) or len(r) < 2 for r in rows):
            shape = f"{len(rows)} rows of {len(rows[0]) if rows and isinstance(rows[0], list) else '?'}"
            raise ValueError(
                f"{self.url}/pooling answered {shape} for {len(steps)} steps of problem {problem.id!r}: the "
                f"server's pooler is not reading one row per {self.scheme.tag!r}. Serve the model with STEP "
                f"pooling and step_tag_id set to that token's id (docs/serving.md)")
        return [float(r[self.positive_column]) for r in rows]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


def _pooling_problem(data: object) -> str | None:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list) or not data["data"]:
        return "no 'data' list"
    first = data["data"][0]
    if not isinstance(first, dict) or not isinstance(first.get("data"), list):
        return "the first result has no 'data' list"
    return None
