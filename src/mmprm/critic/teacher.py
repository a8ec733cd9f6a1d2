"""Teachers that write critiques for training a critic.

GM-PRM's teacher is GPT-4o. Here, for synthetic problems, `SimulatedTeacher`
writes critiques from the generator's ground truth with controlled, seeded
noise (wrong verdicts, a wrong first error, bad corrections, dropped
fields), standing in for a strong model's mistakes: a stand-in, and reports
call it one. Its output is text in a critique layout, so it goes through the
same parser as any teacher's (a dropped field makes an unparseable critique,
as a real teacher's cut-off output would).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from mmprm.critic.critique import Critique, StepReview, render
from mmprm.critic.prompt import critic_messages
from mmprm.critic.verdicts import TokenLogprobs
from mmprm.data.synth.check import corrected_step, local_step_labels
from mmprm.policy.openai import openai_message
from mmprm.seeds import derive_seed
from mmprm.types import Problem

NOISE_KINDS = ("verdict", "first_error", "correction", "dropped")
SPEC_HELP = "sim:NOISE (the simulated teacher: synthetic problems only) or chat:URL#MODEL"


def load_teacher(spec: str, layout: str = "compact"):
    """A teacher from its spec; a chat teacher always writes the prose layout."""
    kind, _, rest = spec.partition(":")
    if kind == "sim" and rest:
        try:
            return SimulatedTeacher(float(rest), layout=layout)
        except ValueError:
            raise ValueError(f"teacher spec {spec!r}: the noise must be a number in [0, 1]") from None
    if kind == "chat" and "#" in rest:
        url, _, model = rest.partition("#")
        return ChatTeacher(url, model)
    raise ValueError(f"teacher spec {spec!r} is not {SPEC_HELP}")


@dataclass
class TeacherAnswer:
    """A teacher's critique text (None: it could not write one), the generated tokens with
    their alternatives' logprobs where the server gave them, and the tokens it wrote."""

    text: str | None
    token_logprobs: TokenLogprobs | None = None
    completion_tokens: int = 0


class SimulatedTeacher:
    """Critiques from the synthetic ground truth; with probability `noise` a critique gets
    one mistake of a kind drawn from those of NOISE_KINDS it can have (no wrong correction
    where nothing is wrong, no other step to blame in a one-step solution). Deterministic in
    (seed, problem, steps)."""

    name = "simulated-teacher"

    def __init__(self, noise: float = 0.0, *, seed: int = 0, layout: str = "compact"):
        if not 0 <= noise <= 1:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.noise, self.seed, self.layout = noise, seed, layout
        self.name = f"simulated-teacher:noise={noise:g}"

    def answer(self, problem: Problem, steps: list[str]) -> TeacherAnswer:
        return TeacherAnswer(self.critique(problem, steps))

    def critique(self, problem: Problem, steps: list[str]) -> str | None:
        """The teacher's critique text, or None where the ground truth cannot correct the
        first wrong step (a step that is neither a reading nor arithmetic)."""
        truth = self.true_critique(problem, steps)
        if truth is None:
            return None
        rng = random.Random(derive_seed(self.seed, "teacher", problem.id, *steps))
        if rng.random() >= self.noise:
            return render(truth, self.layout)
        kinds = [k for k in NOISE_KINDS if (k != "first_error" or len(steps) > 1)
                 and (k != "correction" or truth.first_error is not None)]  # the mistakes this critique can have
        return self._mistake(truth, problem, steps, rng.choice(kinds), rng)

    @staticmethod
    def true_critique(problem: Problem, steps: list[str]) -> Critique | None:
        verdicts = local_step_labels(problem, steps)
        first = next((i for i, ok in enumerate(verdicts) if not ok), None)
        upto = len(steps) if first is None else first + 1
        reviews = tuple(_review(problem, steps[i], verdicts[i]) for i in range(upto))
        if first is None:
            return Critique(reviews, None)
        correction = corrected_step(problem, steps[first])
        return None if correction is None else Critique(reviews, first, correction)

    def _mistake(self, truth: Critique, problem: Problem, steps: list[str], kind: str,
                 rng: random.Random) -> str:
        reviews = list(truth.reviews)
        if kind == "verdict":  # a verdict flipped, the first error following it, as a careless teacher's would
            k = rng.randrange(len(steps))
            flipped = [*(r.correct for r in reviews), *([True] * (len(steps) - len(reviews)))]
            flipped[k] = not flipped[k]
            first = next((i for i, ok in enumerate(flipped) if not ok), None)
            upto = len(steps) if first is None else first + 1
            reviews = [_review(problem, steps[i], flipped[i]) for i in range(upto)]
            fix = None if first is None else (corrected_step(problem, steps[first]) or steps[first])
            return render(Critique(tuple(reviews), first, fix), self.layout)
        if kind == "first_error":  # blames another step, consistently
            choices = [i for i in range(len(steps)) if i != truth.first_error]
            first = rng.choice(choices)
            reviews = [_review(problem, steps[i], i != first) for i in range(first + 1)]
            fix = corrected_step(problem, steps[first]) or steps[first]
            if fix == steps[first]:
                fix = _bump(fix, rng)
            return render(Critique(tuple(reviews), first, fix), self.layout)
        if kind == "correction":  # the fix is itself wrong
            return render(Critique(truth.reviews, truth.first_error, _bump(truth.correction or "", rng)),
                          self.layout)
        text = render(truth, self.layout).splitlines()  # a field dropped: the output is cut or garbled
        del text[rng.choice([i for i, line in enumerate(text) if line.strip()])]
        return "\n".join(text)


def _review(problem: Problem, step: str, correct: bool) -> StepReview:
    """A plain review in the teacher's words: what the step does, what the figure shows for it,
    and the evidence for the verdict (the value the step states, or its arithmetic redone in
    full, "8 + 2 = 10"), so the verdict follows from what the review says rather than
    repeating it. The arithmetic is written out rather than as its result alone: a critic
    that learns from it then adds next to the operands, in the form its policy adds in."""
    read = re.match(r"^\s*(?:the\s+)?(.+?)\s+is\s+(\d+)", step, re.I)
    if read:
        shown = problem.meta.get("objects", {}).get(read.group(1))
        visual = f"figure shows {shown}" if shown is not None else "not in the figure"
        return StepReview(f"read {read.group(1)}", visual, f"step says {read.group(2)}", correct)
    should = corrected_step(problem, step)
    logic = should if should else "no arithmetic to check"
    return StepReview("compute", "no reading", logic, correct)


def _bump(step: str, rng: random.Random) -> str:
    """The step with its last number changed: a correction that is wrong."""
    m = re.search(r"(\d+)(\D*)$", step)
    if not m:
        return step + " 1"
    return step[: m.start(1)] + str(int(m.group(1)) + rng.randint(1, 9)) + m.group(2)


class ChatTeacher:
    """A teacher model behind an OpenAI-compatible chat API (vLLM, a hosted model,
    `mmprm serve-policy`): the problem's figures as data URIs, the numbered steps, and
    GM-PRM's request to review each step up to the first wrong one and correct it, in
    the prose layout that `critique.parse` reads. Returns the model's text as it is: the
    parser decides whether it is a critique."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0,
                 max_retries: int = 5, max_tokens: int = 2048, temperature: float = 0.0, top_logprobs: int = 0):
        import httpx

        from mmprm.http import Retrying

        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.max_tokens, self.temperature = model, max_tokens, temperature
        self.top_logprobs = top_logprobs  # > 0: ask for each token's alternatives (a critic reads its verdicts' odds)
        self.name = f"chat-teacher:{base_url}#{model}"
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self._retrying = Retrying("teacher server", max_retries=max_retries)
        self._images: dict[str, str] = {}

    def critique(self, problem: Problem, steps: list[str]) -> str:
        return self.answer(problem, steps).text or ""

    def answer(self, problem: Problem, steps: list[str]) -> TeacherAnswer:
        """The text, with each token's alternatives where asked for and the server gives them."""
        messages = [openai_message(m, self._images) for m in critic_messages(problem, steps, "prose")]
        body = {"model": self.model, "messages": messages,
                "max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.top_logprobs:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        data = self._retrying.post(self._client, self.url, body, _has_text)
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return TeacherAnswer(choice["message"].get("content") or "", _token_logprobs(choice),
                             int(usage.get("completion_tokens") or 0))

    def close(self) -> None:
        self._client.close()


def _token_logprobs(choice: dict) -> TokenLogprobs | None:
    """OpenAI's `logprobs.content` as (token, {alternative: logprob}), the token itself among them."""
    content = (choice.get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return None
    try:
        return [(t["token"], {**{a["token"]: float(a["logprob"]) for a in t.get("top_logprobs") or []},
                              t["token"]: float(t["logprob"])}) for t in content]
    except (KeyError, TypeError, ValueError):
        return None


def _has_text(data: object) -> str | None:
    try:
        content = data["choices"][0]["message"].get("content")  # type: ignore[index]
    except (KeyError, IndexError, TypeError, AttributeError):
        return "no choices[0].message"
    return None if content is None or isinstance(content, str) else "the message content is not text"
