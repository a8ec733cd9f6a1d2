"""Graders: decide whether a predicted answer matches the reference.

`RuleGrader` uses extraction rules and math-verify; `JudgeGrader` asks an LLM
through an OpenAI-compatible endpoint; `HybridGrader` uses the rules and
calls the judge only where the rules could not read an answer. Stages receive
a Grader; they never build one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from mmprm.grading.equivalence import equivalent
from mmprm.grading.extract import choice_text, normalize_answer, to_choice_letter
from mmprm.types import Problem


@dataclass
class Verdict:
    equal: bool
    gold: str
    pred: str | None
    parsed: bool  # False when the rules could not read an answer
    method: str

    def to_dict(self) -> dict:
        return {"equal": self.equal, "gold": self.gold, "pred": self.pred, "method": self.method}


class Grader:
    name = "grader"  # saved with outputs that hold verdicts, so a resume never mixes graders

    def grade(self, gold: str, pred: str | None, choices: list[str] | None = None) -> Verdict:
        raise NotImplementedError

    def is_correct(self, problem: Problem, pred: str | None) -> bool:
        return self.grade(problem.answer, pred, problem.choices).equal


class RuleGrader(Grader):
    """Extraction rules plus math-verify, each answer under `timeout` seconds."""

    name = "rules"

    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout

    def grade(self, gold: str, pred: str | None, choices: list[str] | None = None) -> Verdict:
        if pred is None or not normalize_answer(pred):
            return Verdict(False, gold, pred, False, "no answer")
        if choices:
            gold_letter = to_choice_letter(gold, choices)
            pred_letter = to_choice_letter(pred, choices)
            if gold_letter and pred_letter:
                return Verdict(gold_letter == pred_letter, gold, pred, True, "choice letter")
            if gold_letter:  # the prediction is a value: compare it with the gold option's text
                gold = choice_text(gold_letter, choices)
        result = equivalent(gold, pred, timeout=self.timeout)
        return Verdict(result.equal, gold, pred, result.parsed, result.reason)


JUDGE_PROMPT = """You compare a student's final answer with the reference answer of a math problem.
{question}Reference answer: {gold}
Student answer: {pred}
Are they mathematically equivalent? Reply with one word: YES or NO."""


class JudgeGrader(Grader):
    """An LLM judge behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 timeout: float = 60.0, max_retries: int = 3):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = f"judge:{base_url}#{model}"
        self.max_retries = max_retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def grade(self, gold: str, pred: str | None, choices: list[str] | None = None,
              question: str | None = None) -> Verdict:
        if pred is None or not pred.strip():
            return Verdict(False, gold, pred, False, "no answer")
        if choices:
            letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            listed = "; ".join(f"({letters[i]}) {c}" for i, c in enumerate(choices))
            question = (question or "") + f"Options: {listed}\n"
        prompt = JUDGE_PROMPT.format(question=f"Problem: {question}\n" if question else "",
                                     gold=gold, pred=pred)
        reply = self._ask(prompt)
        word = reply.strip().upper()
        if word.startswith("YES"):
            return Verdict(True, gold, pred, True, "judge")
        if word.startswith("NO"):
            return Verdict(False, gold, pred, True, "judge")
        return Verdict(False, gold, pred, False, f"judge reply not understood: {reply[:80]!r}")

    def _ask(self, prompt: str) -> str:
        body = {"model": self.model, "temperature": 0.0, "max_tokens": 4,
                "messages": [{"role": "user", "content": prompt}]}
        error = ""
        for attempt in range(self.max_retries + 1):
            try:
                r = self._client.post(self.url, json=body)
                if r.status_code == 200:
                    return r.json()["choices"][0]["message"]["content"] or ""
                error = f"HTTP {r.status_code}"
                if r.status_code not in (429, 500, 502, 503, 504):
                    break
            except (httpx.TransportError, KeyError, IndexError, ValueError) as e:
                error = f"{type(e).__name__}: {e}"
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise RuntimeError(f"judge at {self.url} failed: {error}")

    def close(self) -> None:
        self._client.close()


class HybridGrader(Grader):
    """Rules first; the judge only where the rules could not parse an answer."""

    def __init__(self, rules: RuleGrader, judge: JudgeGrader):
        self.rules, self.judge = rules, judge
        self.name = f"rules+{judge.name}"

    def grade(self, gold: str, pred: str | None, choices: list[str] | None = None) -> Verdict:
        verdict = self.rules.grade(gold, pred, choices)
        if verdict.parsed or pred is None:
            return verdict
        return self.judge.grade(gold, pred, choices)


def load_grader(judge: str | None = None, *, hybrid: bool = False, timeout: float = 5.0) -> Grader:
    """The grader the command line asks for: the rules alone, an LLM judge at
    `URL#MODEL`, or (`hybrid`) the rules with the judge where they cannot read an answer."""
    rules = RuleGrader(timeout=timeout)
    if not judge:
        if hybrid:
            raise ValueError("--hybrid needs --judge URL#MODEL")
        return rules
    url, _, model = judge.partition("#")
    if not url or not model:
        raise ValueError(f"--judge must be URL#MODEL, e.g. http://127.0.0.1:8000/v1#Qwen2.5-7B-Instruct; got {judge!r}")
    grader = JudgeGrader(url, model)
    return HybridGrader(rules, grader) if hybrid else grader
