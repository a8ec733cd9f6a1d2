"""The Policy interface: sample continuations of a partial solution.

Every later stage (generate, annotate, search) receives a Policy and never
builds one, so the same code runs with the tiny local model, a vLLM server,
or a scripted policy in a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmprm.types import Problem


@dataclass
class SamplingParams:
    """Sampling settings shared by every backend. `top_k=0` disables top-k."""

    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def check(self) -> None:
        """Raise ValueError on settings no backend can sample with (every command that samples checks here)."""
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if any(not s for s in self.stop):
            raise ValueError("stop strings must not be empty")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(f"sampling needs temperature >= 0, 0 < top_p <= 1 and top_k >= 0; got "
                             f"{self.temperature}, {self.top_p}, {self.top_k}")


@dataclass
class Continuation:
    """One sampled continuation of (problem, prefix steps).

    `steps` are the new steps only; `answer` is the extracted final answer or
    None; `finished` is False when generation hit `max_tokens` or a stop
    string before the solution ended.
    """

    text: str
    steps: list[str]
    answer: str | None
    finished: bool
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Request:
    """One prompt: a problem and the steps so far. `seed`, when set, asks the
    backend to make this request's samples reproducible on their own, whatever
    else is in the batch (annotation relies on it to resume exactly); backends
    that cannot honour it fall back to `SamplingParams.seed`."""

    problem: Problem
    prefix_steps: list[str] = field(default_factory=list)
    seed: int | None = None


class Policy:
    """Base class of policy backends.

    Backends implement `sample_batch`; it must return, for each request, a
    list of `params.n` continuations in request order. Problem images are
    absolute paths or data URIs (as `mmprm.data.load_problems` returns them).
    """

    name: str = "policy"

    def sample_batch(self, requests: list[Request], params: SamplingParams) -> list[list[Continuation]]:
        raise NotImplementedError

    def sample(self, problem: Problem, prefix_steps: list[str], params: SamplingParams) -> list[Continuation]:
        return self.sample_batch([Request(problem, list(prefix_steps))], params)[0]

    def stream(self) -> SampleStream:
        """A stream of requests whose results come back as each is done (see SampleStream)."""
        return SampleStream(self)

    def close(self) -> None:
        """Release servers, clients or memory the backend holds."""


class SampleStream:
    """Requests go in as they arise and come back as each is done.

    Why: a caller with many independent requests (the annotation runner, one
    search per problem) should not wait for the slowest of a round before
    sending the next; a backend that batches continuously (the hf backend) or
    serves concurrently (an OpenAI-compatible server) then stays busy. This
    default sends what was submitted in one `sample_batch` per distinct
    settings when results are asked for, which is what rounds did.
    """

    def __init__(self, policy: Policy):
        self.policy = policy
        self._waiting: list[tuple[object, Request, SamplingParams]] = []

    def submit(self, key: object, request: Request, params: SamplingParams) -> None:
        """Queue a request; its result comes back from `completed` under `key`."""
        params.check()
        self._waiting.append((key, request, params))

    def __len__(self) -> int:
        """Requests submitted and not yet returned."""
        return len(self._waiting)

    def completed(self) -> list[tuple[object, list[Continuation]]]:
        """Blocks until at least one submitted request is done (unless none is
        pending); returns every one that is, as (key, continuations)."""
        waiting, self._waiting = self._waiting, []
        done = []
        for settings in dict.fromkeys(repr(p) for _, _, p in waiting):  # in order of submission
            group = [w for w in waiting if repr(w[2]) == settings]
            results = self.policy.sample_batch([r for _, r, _ in group], group[0][2])
            done.extend((key, conts) for (key, _, _), conts in zip(group, results))
        return done

    def close(self) -> None:
        """Drop what is still pending (after an error or an interrupt)."""
        self._waiting = []
