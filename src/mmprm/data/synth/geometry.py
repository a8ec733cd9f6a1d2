"""Geometry with lengths and angles labelled in the figure, never in the question.

Each task has a natural number of steps (square perimeter 2 ... quadrilateral
perimeter 7); "plus k" / "minus k" at the end of the question adds one more,
so every count from 2 to 8 is reachable. Sides are labelled by position
(width, height, base, top, left side, right side), which the reading steps use
as object names.
"""

from __future__ import annotations

import math
import random

from mmprm.data.synth.common import Candidate, Step, compute, read
from mmprm.data.synth.render import Canvas

NAME = "geometry"
FILL = (225, 235, 250)


def _sum_steps(names: list[str], values: list[int]) -> list[Step]:
    steps = [read(n, v) for n, v in zip(names, values)]
    acc = values[0]
    for v in values[1:]:
        steps.append(compute(acc, "+", v))
        acc = steps[-1].value
    return steps


def _square(rng):
    s = rng.randint(2, 24)
    return "the perimeter of the square", {"side": s}, [read("side", s), compute(4, "*", s)]


def _equilateral(rng):
    s = rng.randint(2, 33)
    return "the perimeter of the equilateral triangle", {"side": s}, [read("side", s), compute(3, "*", s)]


def _right_angle(rng):
    a = rng.randint(20, 70)
    return "the third angle of the right triangle", {"angle": a}, [read("angle", a), compute(90, "-", a)]


def _rect_area(rng):
    w, h = rng.randint(2, 9), rng.randint(2, 9)
    steps = [read("width", w), read("height", h), compute(w, "*", h)]
    return "the area of the rectangle", {"width": w, "height": h}, steps


def _rect_perimeter(rng):
    w, h = rng.randint(2, 20), rng.randint(2, 20)
    steps = [read("width", w), read("height", h), compute(w, "+", h), compute(w + h, "+", w + h)]
    return "the perimeter of the rectangle", {"width": w, "height": h}, steps


def _triangle(rng):
    sides = [rng.randint(3, 20) for _ in range(3)]
    if 2 * max(sides) >= sum(sides):
        return None
    names = ["base", "left side", "right side"]
    return "the perimeter of the triangle", dict(zip(names, sides)), _sum_steps(names, sides)


def _split_area(rng):
    w1, w2, h = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)
    a1, a2 = w1 * h, w2 * h
    steps = [read("left width", w1), read("right width", w2), read("height", h)]
    steps += [compute(w1, "*", h), compute(w2, "*", h), compute(a1, "+", a2)]
    return "the total area of the two rectangles", {"left width": w1, "right width": w2, "height": h}, steps


def _quad(rng):
    names = ["base", "top", "left side", "right side"]
    sides = [rng.randint(8, 20), rng.randint(3, 12), rng.randint(3, 15), rng.randint(3, 15)]
    if sides[1] >= sides[0]:
        return None
    return "the perimeter of the shape", dict(zip(names, sides)), _sum_steps(names, sides)


# task name -> (steps without a "plus k", builder)
TASKS = {
    "square_perimeter": (2, _square),
    "equilateral_perimeter": (2, _equilateral),
    "right_angle": (2, _right_angle),
    "rect_area": (3, _rect_area),
    "rect_perimeter": (4, _rect_perimeter),
    "triangle_perimeter": (5, _triangle),
    "split_area": (6, _split_area),
    "quad_perimeter": (7, _quad),
}


def build(rng: random.Random, n_steps: int) -> Candidate | None:
    options = [t for t, (base, _) in TASKS.items() if base in (n_steps, n_steps - 1)]
    task = rng.choice(options)
    base, fn = TASKS[task]
    made = fn(rng)
    if made is None:
        return None
    what, objects, steps = made
    question = f"What is {what}?"
    if base < n_steps:
        k = rng.randint(1, 9)
        op = rng.choice("+-")
        steps.append(compute(steps[-1].value, op, k))
        question = f"What is {what} {'plus' if op == '+' else 'minus'} {k}?"
    return Candidate(NAME, task, question, objects, steps)


def draw(c: Candidate, rng: random.Random, canvas: Canvas) -> None:
    dx, dy = rng.randint(-4, 4), rng.randint(-4, 4)
    o = c.objects
    shape = c.task
    if shape == "right_angle":
        _draw_right_triangle(canvas, o["angle"], rng.random() < 0.5, dx, dy)
    elif shape == "equilateral_perimeter":
        side = 72 + rng.randint(-6, 6)
        x0, y1 = 56 - side / 2 + dx, 84 + dy
        pts = [(x0, y1), (x0 + side, y1), (x0 + side / 2, y1 - side * math.sqrt(3) / 2)]
        canvas.polygon(pts, fill=FILL)
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):  # a tick on each side: all equal
            mx, my, ux, uy = (ax + bx) / 2, (ay + by) / 2, (by - ay) / side, (ax - bx) / side
            canvas.line([(mx - 3 * ux, my - 3 * uy), (mx + 3 * ux, my + 3 * uy)], w=1.5)
        canvas.text(x0 + side / 2, y1 + 13, str(o["side"]))
    elif shape == "square_perimeter":
        s = 52 + rng.randint(-6, 6)
        x0, y0 = 56 - s / 2 + dx, 50 - s / 2 + dy
        canvas.rect(x0, y0, x0 + s, y0 + s, fill=FILL)
        canvas.text(x0 + s / 2, y0 + s + 11, str(o["side"]))
    elif shape in ("rect_area", "rect_perimeter", "split_area"):
        w_val = o.get("width", o.get("left width", 0) + o.get("right width", 0))
        pw = min(84, max(40, 24 + 4 * w_val)) + rng.randint(-3, 3)
        ph = min(66, max(30, 20 + 4 * o["height"])) + rng.randint(-3, 3)
        x0, y0 = 62 - pw / 2 + dx, 50 - ph / 2 + dy
        x1, y1 = x0 + pw, y0 + ph
        canvas.rect(x0, y0, x1, y1, fill=FILL)
        hw, _ = canvas.text_size(str(o["height"]))
        canvas.text(x0 - 4 - hw / 2, (y0 + y1) / 2, str(o["height"]))
        if shape == "split_area":
            xm = x0 + pw * o["left width"] / (o["left width"] + o["right width"])
            xm = min(max(xm, x0 + 14), x1 - 14)
            canvas.line([(xm, y0), (xm, y1)])
            canvas.text((x0 + xm) / 2, y1 + 11, str(o["left width"]))
            canvas.text((xm + x1) / 2, y1 + 11, str(o["right width"]))
        else:
            canvas.text((x0 + x1) / 2, y1 + 11, str(o["width"]))
    elif shape == "triangle_perimeter":
        x0, x1, y1 = 22 + dx, 92 + dx, 82 + dy
        apex = (rng.randint(40, 74) + dx, 20 + rng.randint(-3, 5) + dy)
        _labelled_polygon(canvas, [(x0, y1), (x1, y1), apex], [o["base"], o["right side"], o["left side"]])
    else:  # quad_perimeter
        x0, x1, y0, y1 = 14 + dx, 98 + dx, 28 + dy, 80 + dy
        ta, tb = x0 + rng.randint(12, 24), x1 - rng.randint(12, 24)
        pts = [(x0, y1), (x1, y1), (tb, y0), (ta, y0)]
        _labelled_polygon(canvas, pts, [o["base"], o["right side"], o["top"], o["left side"]])


def _labelled_polygon(canvas: Canvas, pts, values: list[int]) -> None:
    """Outline `pts` (counter-clockwise on screen) and label edge i with values[i], outside it."""
    canvas.polygon(pts, fill=FILL)
    cx = sum(p[0] for p in pts) / len(pts)
    cy = sum(p[1] for p in pts) / len(pts)
    for (ax, ay), (bx, by), v in zip(pts, pts[1:] + pts[:1], values):
        mx, my = (ax + bx) / 2, (ay + by) / 2
        nx, ny = mx - cx, my - cy
        norm = math.hypot(nx, ny) or 1.0
        w, h = canvas.text_size(str(v))
        off = 4 + max(w * abs(nx), h * abs(ny)) / norm / 2
        canvas.text(mx + nx / norm * off, my + ny / norm * off, str(v))


def _draw_right_triangle(canvas: Canvas, angle: int, at_bottom: bool, dx: int, dy: int) -> None:
    """Drawn to scale: the labelled angle is `angle` degrees, at the bottom-right or top-left."""
    t = math.tan(math.radians(angle if at_bottom else 90 - angle))  # height / width
    w, h = (LEG, LEG * t) if t <= 1 else (LEG / t, LEG)
    x0, y1 = 12 + dx, 98 + dy
    x1, y0 = x0 + w, y1 - h
    tri = [(x0, y1), (x1, y1), (x0, y0)]
    canvas.polygon(tri, fill=FILL)
    canvas.line([(x0 + 8, y1), (x0 + 8, y1 - 8), (x0, y1 - 8)], w=1.5)
    deg = math.degrees(math.atan2(h, w))
    if at_bottom:
        vertex, start, end = (x1, y1), 180.0, 180 + deg
    else:
        vertex, start, end = (x0, y0), deg, 90.0
    canvas.arc(*vertex, ARC, start, end)
    tx, ty = _label_spot(canvas, str(angle), tri, vertex)
    canvas.text(tx, ty, str(angle), degree=True)


ARC = 11  # radius of the angle mark
LEG = 90.0  # the longer leg


def _label_spot(canvas: Canvas, text: str, tri, vertex) -> tuple[float, float]:
    """The spot nearest the labelled vertex where the label crosses no edge, the arc or the
    right-angle mark; inside the triangle when it fits there (a narrow angle leaves no room)."""
    w, h = canvas.text_size(text)
    mx, my = tri[0]
    edges = list(zip(tri, tri[1:] + tri[:1]))
    best, best_cost = (56.0, 56.0), math.inf
    for cx in range(2, 112, 2):
        for cy in range(2, 112, 2):
            box = (cx - w / 2 - 3, cy - h / 2 - 3, cx + w / 2 + 8, cy + h / 2 + 3)  # + the degree sign
            if box[0] < 1 or box[1] < 1 or box[2] > 111 or box[3] > 111:
                continue
            near_x = min(max(vertex[0], box[0]), box[2])
            near_y = min(max(vertex[1], box[1]), box[3])
            gap = math.hypot(near_x - vertex[0], near_y - vertex[1])
            cost = gap + (0 if _inside(tri, (cx, cy)) else 40)
            if gap <= ARC + 1 or cost >= best_cost or box[0] <= mx + 9 and box[3] >= my - 9 and box[2] >= mx:
                continue
            if not any(_crosses(a, b, box) for a, b in edges):
                best, best_cost = (cx, cy), cost
    return best


def _crosses(a, b, box) -> bool:
    """Whether segment a-b meets the box (Liang-Barsky clipping)."""
    t0, t1 = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in ((-dx, a[0] - box[0]), (dx, box[2] - a[0]), (-dy, a[1] - box[1]), (dy, box[3] - a[1])):
        if p == 0:
            if q < 0:
                return False
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    return t0 <= t1


def _inside(tri, p) -> bool:
    signs = []
    for (ax, ay), (bx, by) in zip(tri, tri[1:] + tri[:1]):
        signs.append((bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) >= 0)
    return all(signs) or not any(signs)
