"""Counting coloured shapes plus arithmetic: the counts exist only in the picture.

A question counts either by colour ("red") or by kind ("circles"); the
ground truth holds both, with zeros for what is absent, so a model that reads
"orange is 0" is judged right.
"""

from __future__ import annotations

import random

from mmprm.data.synth.common import Candidate, expression, terms_wanted
from mmprm.data.synth.render import Canvas

NAME = "counting"
PALETTE = {"red": (215, 25, 25), "blue": (30, 70, 220), "green": (20, 150, 40), "orange": (245, 140, 0)}
KINDS = ["circles", "squares", "triangles"]
GRID, CELL, ORIGIN = 5, 20, 6  # 5x5 cells of 20 design pixels
MAX_SHAPES = 16


def build(rng: random.Random, n_steps: int) -> Candidate | None:
    want = terms_wanted(n_steps)
    colours = sorted(rng.sample(list(PALETTE), rng.randint(max(2, min(4, want)), 4)), key=list(PALETTE).index)
    kinds = rng.sample(KINDS, rng.randint(max(2, min(3, want)), 3))
    shapes = [(col, rng.choice(kinds)) for col in colours for _ in range(rng.randint(1, 5))]
    if len(shapes) > MAX_SHAPES:
        return None
    rng.shuffle(shapes)
    objects = {col: sum(s[0] == col for s in shapes) for col in PALETTE}
    objects |= {kind: sum(s[1] == kind for s in shapes) for kind in KINDS}
    present_kinds = [k for k in KINDS if objects[k] > 0]
    by_colour = len(present_kinds) < want or rng.random() < 0.6  # too few kinds: count colours
    axis = colours if by_colour else present_kinds
    made = expression(rng, [(a, a, objects[a]) for a in axis], n_steps)
    if made is None:
        return None
    expr, steps = made
    return Candidate(
        family=NAME,
        task="colour" if by_colour else "kind",
        question=f"Count the shapes. What is {expr}?",
        objects=objects,
        steps=steps,
        figure={"shapes": shapes},
    )


def draw(c: Candidate, rng: random.Random, canvas: Canvas) -> None:
    cells = rng.sample(range(GRID * GRID), len(c.figure["shapes"]))
    for cell, (colour, kind) in zip(cells, c.figure["shapes"]):
        cx = ORIGIN + (cell % GRID + 0.5) * CELL + rng.randint(-2, 2)
        cy = ORIGIN + (cell // GRID + 0.5) * CELL + rng.randint(-2, 2)
        r = (13 + rng.randint(-1, 1)) / 2
        fill = PALETTE[colour]
        if kind == "circles":
            canvas.ellipse(cx - r, cy - r, cx + r, cy + r, fill=fill)
        elif kind == "squares":
            q = r * 0.9
            canvas.rect(cx - q, cy - q, cx + q, cy + q, fill=fill, outline=None)
        else:
            canvas.polygon([(cx, cy - r - 1), (cx - r - 1, cy + r), (cx + r + 1, cy + r)], fill=fill, outline=None)
