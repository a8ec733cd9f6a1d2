"""The annotation tree: prefix states with MC values, and the rollouts from them.

A state is a solution prefix (a list of steps). States form a prefix tree:
a state's parent is the longest other state whose steps begin it, so an edge
carries one or more steps. Trees are saved one JSON per problem for
inspection and turned into training paths by `to_paths` (MM-PRM's traversal)
or `rollout_paths` (every complete solution the search sampled). Each path
carries `meta.mc_counts`, the [right, total] rollouts behind each prefix's MC
(the empty prefix first), from which mmprm.labels derives its label sources.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mmprm.types import AnnotatedPath, Problem


@dataclass
class Rollout:
    steps: list[str]  # the steps after the state's prefix
    answer: str | None
    correct: bool
    tokens: int

    def to_dict(self) -> dict:  # by hand: `asdict` deep-copies, and a problem's tree holds hundreds of these
        return {"steps": list(self.steps), "answer": self.answer, "correct": self.correct, "tokens": self.tokens}


@dataclass
class State:
    id: int
    steps: list[str]
    parent: int | None
    mc: float | None = None
    visits: int = 0
    rollouts: list[Rollout] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "steps": list(self.steps), "parent": self.parent, "mc": self.mc, "visits": self.visits,
                "rollouts": [r.to_dict() for r in self.rollouts], "children": list(self.children)}


@dataclass
class Tree:
    problem_id: str
    states: list[State] = field(default_factory=list)
    first_errors: list[dict] = field(default_factory=list)  # one per binary search
    skipped: str | None = None
    rollouts: int = 0
    tokens: int = 0
    searches: int = 0
    label_rollouts: int = 0  # of `rollouts`, those that completed estimates for labels after the search

    def __post_init__(self) -> None:
        self._by_steps: dict[tuple[str, ...], int] = {tuple(s.steps): s.id for s in self.states}

    @property
    def root(self) -> State:
        return self.states[0]

    def find(self, steps: list[str]) -> State | None:
        i = self._by_steps.get(tuple(steps))
        return None if i is None else self.states[i]

    def insert(self, steps: list[str]) -> State:
        """The state for `steps`, created in its place in the prefix tree if new."""
        existing = self.find(steps)
        if existing is not None:
            return existing
        state = State(id=len(self.states), steps=list(steps), parent=None)
        if self.states:
            parent = self.root
            descended = True
            while descended:
                descended = False
                for c in parent.children:
                    child = self.states[c]
                    if _is_prefix(child.steps, steps):
                        parent, descended = child, True
                        break
            state.parent = parent.id
            # children of the parent that extend the new state move under it
            moved = [c for c in parent.children if _is_prefix(steps, self.states[c].steps)]
            for c in moved:
                parent.children.remove(c)
                self.states[c].parent = state.id
            state.children = moved
            parent.children.append(state.id)
        self.states.append(state)
        self._by_steps[tuple(steps)] = state.id
        return state

    def to_dict(self) -> dict:
        return {"problem_id": self.problem_id, "skipped": self.skipped, "rollouts": self.rollouts,
                "tokens": self.tokens, "searches": self.searches, "label_rollouts": self.label_rollouts,
                "first_errors": self.first_errors,
                "states": [s.to_dict() for s in self.states]}

    @classmethod
    def from_dict(cls, d: dict) -> Tree:
        states = [State(**{**s, "rollouts": [Rollout(**r) for r in s["rollouts"]]}) for s in d["states"]]
        return cls(d["problem_id"], states, d["first_errors"], d["skipped"], d["rollouts"], d["tokens"],
                   d["searches"], d.get("label_rollouts", 0))


def _is_prefix(prefix: list[str], steps: list[str]) -> bool:
    return len(prefix) < len(steps) and steps[: len(prefix)] == prefix


def to_paths(tree: Tree, problem: Problem) -> list[AnnotatedPath]:
    """MM-PRM's traversal: each edge's steps take the child's MC value; a path
    ends at the first state with MC 0 (a negative path) or, at a leaf with MC
    above 0, runs on through that leaf's shortest correct rollout (a positive
    path; its steps keep the leaf's MC, its last step gets 1.0 because the
    answer it reaches is right). States without an MC are not labels."""
    if tree.skipped or not tree.states:
        return []
    paths: list[AnnotatedPath] = []
    start = [state_counts(tree.root)]

    def walk(state: State, steps: list[str], labels: list[float], counts: list) -> None:
        if state.mc is None:  # a wrong rollout's end left unlabelled (blame_last_step off)
            return
        if state.id != tree.root.id:
            span = state.steps[len(steps):]
            steps, labels = steps + span, labels + [float(state.mc)] * len(span)
            counts = counts + [None] * (len(span) - 1) + [state_counts(state)]
            if state.mc == 0:
                paths.append(AnnotatedPath.of(problem, steps, labels, end="negative", mc_counts=counts))
                return
        if not state.children:
            correct = sorted((r for r in state.rollouts if r.correct and r.steps), key=lambda r: len(r.steps))
            if correct:
                tail = correct[0].steps
                tail_labels = [float(state.mc)] * (len(tail) - 1) + [1.0]
                tail_counts = [None] * (len(tail) - 1) + [[1, 1]]
                paths.append(AnnotatedPath.of(problem, steps + tail, labels + tail_labels, end="positive",
                                              mc_counts=counts + tail_counts))
            return
        for c in state.children:
            walk(tree.states[c], steps, labels, counts)

    walk(tree.root, [], [], start)
    return paths


def rollout_paths(tree: Tree, problem: Problem) -> list[AnnotatedPath]:
    """Every distinct complete solution the search sampled (a state's prefix plus
    one of its non-empty rollouts), each step labelled with the MC value of the
    prefix ending there: the state's own MC where the prefix is a state (the
    value the traversal gives it too), otherwise the share of right answers
    among the rollouts that pass through the prefix from the states above it.
    Rollouts from deeper states are left out of that pool: the binary search
    placed those states on wrong rollouts, so their samples are not random
    continuations of the prefix. A solution's last step gets exactly its
    correctness.

    Why: MM-PRM's traversal ends every negative path at a first error and
    emits a positive path only from a childless leaf with MC > 0, which the
    binary search rarely leaves, so on short solutions a PRM trained on it
    never sees the last step of a right solution. The rollouts are already
    paid for."""
    if tree.skipped or not tree.states:
        return []
    solutions = [(tuple(s.steps) + tuple(r.steps), r.correct, len(s.steps))
                 for s in tree.states for r in s.rollouts if r.steps]
    through: dict[tuple[str, ...], list[int]] = {}  # prefix -> [right, total], rollouts from above it
    for steps, correct, origin in solutions:
        for j in range(origin + 1, len(steps) + 1):
            count = through.setdefault(steps[:j], [0, 0])
            count[0] += correct
            count[1] += 1

    def value(prefix: tuple[str, ...]) -> tuple[float, list[int]]:
        """The prefix's MC (a state's own, as MM-PRM labels it) and the [right, total]
        rollouts behind it: a state's own pooled with those from above that pass through it,
        which are samples of the policy's continuations of the prefix too."""
        right, total = through[prefix]
        state = tree.find(list(prefix))
        if state is not None and state.mc is not None:
            own = state_counts(state) if state.rollouts else [0, 0]
            return float(state.mc), [own[0] + right, own[1] + total]
        return right / total, [right, total]

    paths, seen = [], set()
    for steps, correct, _ in solutions:
        if steps in seen:
            continue
        seen.add(steps)
        inner = [value(steps[:j]) for j in range(1, len(steps))]
        labels = [mc for mc, _ in inner] + [float(correct)]
        counts = [state_counts(tree.root)] + [c for _, c in inner] + [[int(correct), 1]]
        paths.append(AnnotatedPath.of(problem, list(steps), labels, end="positive" if correct else "negative",
                                      mc_counts=counts))
    return paths


def state_counts(state: State) -> list[int]:
    """[right, total] of a state's rollouts; a state given its MC without rollouts
    is a whole solution, whose outcome is known exactly."""
    if state.rollouts:
        return [sum(r.correct for r in state.rollouts), len(state.rollouts)]
    return [round(state.mc), 1]


def training_paths(tree: Tree, problem: Problem, kind: str = "traversal", *, min_steps: int = 2,
                   limit: int | None = None, seed: int = 0) -> list[AnnotatedPath]:
    """The training paths of one tree: `kind` is traversal, rollouts or both (on
    identical paths the traversal's copy is kept); `limit` caps the rollout
    paths, drawn after the length filter."""
    paths = to_paths(tree, problem) if kind in ("traversal", "both") else []
    if kind in ("rollouts", "both"):
        sampled = filter_paths(rollout_paths(tree, problem), min_steps=min_steps)
        if limit is not None:
            sampled = draw_paths(sampled, limit, seed=seed)
        paths += sampled
    return filter_paths(paths, min_steps=min_steps)


def draw_paths(paths: list[AnnotatedPath], limit: int, *, seed: int) -> list[AnnotatedPath]:
    """At most `limit` of `paths`, drawn at random (seeded), in their order."""
    if len(paths) <= limit:
        return paths
    keep = set(random.Random(seed).sample(range(len(paths)), limit))
    return [p for i, p in enumerate(paths) if i in keep]


def filter_paths(paths: list[AnnotatedPath], *, min_steps: int = 2, balance: bool = False,
                 seed: int = 0) -> list[AnnotatedPath]:
    """Drop short and duplicate paths; optionally balance positive (last label
    above 0) and negative paths by down-sampling the larger side."""
    seen: set[tuple] = set()
    kept = []
    for p in paths:
        key = (p.id, tuple(p.steps))
        if len(p.steps) < min_steps or key in seen:
            continue
        seen.add(key)
        kept.append(p)
    if balance:
        pos = [p for p in kept if p.labels[-1] > 0]
        neg = [p for p in kept if p.labels[-1] == 0]
        n = min(len(pos), len(neg))
        rng = random.Random(seed)
        keep_ids = {id(p) for p in rng.sample(pos, n) + rng.sample(neg, n)}
        kept = [p for p in kept if id(p) in keep_ids]
    return kept
