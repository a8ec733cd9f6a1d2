"""Points on a number line plus arithmetic: positions 0-15, only 0, 5, 10, 15 labelled.

Six design pixels per unit with a tick at every unit, like the bar chart's
scale, so reading a point means counting ticks from the nearest label.
"""

from __future__ import annotations

import random

from mmprm.data.synth.common import Candidate, expression_candidate, terms_wanted
from mmprm.data.synth.render import BLACK, Canvas

NAME = "numberline"
LENGTH = 15
UNIT = 6
MIN_GAP = 3  # keeps the point letters apart


def build(rng: random.Random, n_steps: int) -> Candidate | None:
    k = rng.randint(max(2, min(4, terms_wanted(n_steps))), 4)
    positions: list[int] = []
    for _ in range(50):
        if len(positions) == k:
            break
        x = rng.randint(0, LENGTH)
        if all(abs(x - p) >= MIN_GAP for p in positions):
            positions.append(x)
    letters = "ABCD"[: len(positions)]
    return expression_candidate(rng, NAME, "On the number line, what is {expr}?", "point", letters, positions,
                                n_steps, {"positions": positions})


def draw(c: Candidate, rng: random.Random, canvas: Canvas) -> None:
    x0 = 8 + rng.randint(-2, 2)
    y = 60 + rng.randint(-6, 6)
    canvas.line([(x0 - 4, y), (x0 + LENGTH * UNIT + 4, y)])
    for u in range(LENGTH + 1):
        tick = 6 if u % 5 == 0 else 3
        canvas.line([(x0 + u * UNIT, y - tick), (x0 + u * UNIT, y + tick)], w=1.5 if u % 5 else 2)
        if u % 5 == 0:
            canvas.text(x0 + u * UNIT, y + 16, str(u))
    for letter, pos in zip("ABCD", c.figure["positions"]):
        cx = x0 + pos * UNIT
        canvas.ellipse(cx - 3.5, y - 3.5, cx + 3.5, y + 3.5, fill=(215, 25, 25))
        canvas.text(cx, y - 16, letter, fill=BLACK)
