"""Bar chart reading plus arithmetic: bars A-F, heights 1-12, no numbers on the bars.

Heights are drawn at 6 design pixels per unit with a few pixels of jitter in
position and width (and one in height): the band in which the tiny demo
policy is neither hopeless nor perfect (a ~1 M-parameter Qwen2-VL trained
from scratch lands at 35-45% greedy after ~500 steps; docs/policy.md).
"""

from __future__ import annotations

import random

from mmprm.data.synth.common import Candidate, expression_candidate, terms_wanted
from mmprm.data.synth.render import BLACK, Canvas

NAME = "bars"
UNIT = 6  # design pixels per unit of height
COLOURS = [(40, 80, 200), (200, 60, 40), (30, 140, 60), (120, 60, 170)]


def build(rng: random.Random, n_steps: int) -> Candidate | None:
    k = rng.randint(max(3, terms_wanted(n_steps)), 6)
    letters = "ABCDEF"[:k]
    heights = [rng.randint(1, 12) for _ in letters]
    return expression_candidate(rng, NAME, "In the bar chart, what is {expr}?", "bar", letters, heights,
                                n_steps, {"heights": heights})


def draw(c: Candidate, rng: random.Random, canvas: Canvas) -> None:
    heights = c.figure["heights"]
    k = len(heights)
    axis_x = 12 + rng.randint(-2, 2)
    base_y = 92 + rng.randint(-2, 2)
    top = base_y - 12 * UNIT - 4
    canvas.line([(axis_x, top), (axis_x, base_y), (108, base_y)])
    for u in range(1, 13):
        tick = 5 if u % 5 == 0 else 3
        y = base_y - u * UNIT
        canvas.line([(axis_x - tick, y), (axis_x, y)], w=1)
    slot = (106 - axis_x - 2) / k
    colour = rng.choice(COLOURS)
    for i, h in enumerate(heights):
        centre = axis_x + 3 + (i + 0.5) * slot
        bw = min(14, slot * 0.65) + rng.randint(-1, 1)
        x0 = centre - bw / 2 + rng.randint(-2, 2)
        y0 = base_y - h * UNIT + rng.choice([-1, 0, 0, 1])
        canvas.rect(x0, y0, x0 + bw, base_y, fill=colour, outline=None)
        canvas.text(centre, base_y + 10, "ABCDEF"[i], fill=BLACK)  # letters stay on the slot grid
