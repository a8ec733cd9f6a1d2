"""The step vocabulary every family shares, and the candidate problem record.

Two kinds of step, the same in every family, so one checker judges them all:
a reading step "<object> is <n>" (checked against the figure's ground truth)
and an arithmetic step "<a> <op> <b> = <c>" (checked by evaluating it).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field

MAX_VALUE = 99  # numbers under 100 are single tokens in the tiny model's BPE
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass
class Step:
    text: str
    kind: str  # "read" | "compute"
    value: int

    def to_dict(self) -> dict:
        return {"text": self.text, "kind": self.kind, "value": self.value}


def read(obj: str, value: int) -> Step:
    return Step(f"{obj} is {value}", "read", value)


def compute(a: int, op: str, b: int) -> Step:
    c = OPS[op](a, b)
    return Step(f"{a} {op} {b} = {c}", "compute", c)


@dataclass
class Candidate:
    """A problem before rendering: what the figure shows, the question, the solution.

    `objects` maps every object a reading step may name to its value in the
    figure (all of them, not only the ones the question uses), so any reading
    in a model's solution can be checked. `figure` holds what `draw` needs.
    """

    family: str
    task: str
    question: str
    objects: dict[str, int]
    steps: list[Step]
    figure: dict = field(default_factory=dict)

    @property
    def answer(self) -> int:
        return self.steps[-1].value

    def content_key(self) -> str:
        """Hash of what a solver sees (family, figure values, question); layout jitter excluded."""
        blob = json.dumps([self.family, sorted(self.objects.items()), self.question], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def valid(self) -> bool:
        return all(0 <= s.value <= MAX_VALUE for s in self.steps)


def expression(
    rng: random.Random, terms: list[tuple[str, str, int]], n_steps: int, tries: int = 30
) -> tuple[str, list[Step]] | None:
    """A left-to-right +/- expression over figure terms and small constants, with its steps.

    `terms` are (name in the question, object name in a reading step, value).
    With r terms and e constants the solution has r reads and r - 1 + e
    computations, so any step count is reachable: r = (n + 1) // 2 when there
    are enough terms, and constants make up the rest. Reads come in the order
    the terms appear in the question. Returns None when no choice keeps every
    intermediate in 0..99 (the caller then draws a new figure).
    """
    r = min(len(terms), terms_wanted(n_steps))
    e = n_steps + 1 - 2 * r
    for _ in range(tries):
        chosen = rng.sample(terms, r)
        rest: list[tuple[tuple[str, str, int] | None, int]] = [(t, t[2]) for t in chosen[1:]]
        rest += [(None, rng.randint(1, 9)) for _ in range(e)]
        rng.shuffle(rest)
        acc = chosen[0][2]
        text = chosen[0][0]
        order = [chosen[0]]
        computes: list[Step] = []
        for term, v in rest:
            op = rng.choice("+-")
            if op == "-" and acc - v < 0 or op == "+" and acc + v > MAX_VALUE:
                op = "+" if op == "-" else "-"
            if acc + v > MAX_VALUE and acc - v < 0:
                break
            step = compute(acc, op, v)
            computes.append(step)
            acc = step.value
            text += f" {op} {term[0] if term else v}"
            if term:
                order.append(term)
        else:
            return text, [read(t[1], t[2]) for t in order] + computes
    return None


def expression_candidate(rng: random.Random, family: str, question: str, noun: str, letters: str,
                         values: list[int], n_steps: int, figure: dict) -> Candidate | None:
    """A candidate asking for an expression over lettered figure objects
    ("bar A", "point C"); `question` holds `{expr}`. None when no expression fits."""
    terms = [(c, f"{noun} {c}", v) for c, v in zip(letters, values)]
    made = expression(rng, terms, n_steps)
    if made is None:
        return None
    expr, steps = made
    return Candidate(family=family, task="expression", question=question.format(expr=expr),
                     objects={f"{noun} {c}": v for c, v in zip(letters, values)}, steps=steps, figure=figure)


def terms_wanted(n_steps: int) -> int:
    """How many figure terms an n-step expression uses when the figure has that many objects."""
    return (n_steps + 1) // 2
