"""Label sources: where a PRM's per-step training targets come from, chosen by name.

| name          | from                                                      | needs          |
|---------------|-----------------------------------------------------------|----------------|
| mc            | the prefix's MC value (MM-PRM's label)                    | an annotation  |
| first-error   | steps before the MC-located first error 1, it 0, rest unknown | an annotation |
| first-error-vote | first-error; an unknown step takes the mean label its text has on other paths | an annotation |
| first-error-shared | first-error-vote; else its text's label in other problems, if they agree | an annotation |
| first-error-arithmetic | first-error-vote; a still unknown step takes the arithmetic check's verdict | an annotation |
| survival      | MC(k) / MC(k-1), clipped                                  | an annotation  |
| advantage     | (1 + MC(k) - MC(k-1)) / 2 (process advantage)             | an annotation  |
| arithmetic    | sympy check of each step's "a op b = c"                   | nothing        |
| oracle        | the synthetic generator's verdict on each step            | ground truth   |
| oracle-prefix | the oracle's verdicts chained (0 from the first wrong step) | ground truth |

The oracle sources read ground truth no real user has: they exist to measure
the others against, as a ceiling, and every report names them. Everything
else is computed from the policy's own rollouts (mmprm.labels.mc) or needs
no reference at all. A target of None takes no part in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmprm.io import absolute_images, load_records
from mmprm.labels.judges import ArithmeticJudge, OracleJudge, StepJudge
from mmprm.labels.mc import advantage_labels, first_error_labels, mc_counts, survival_labels
from mmprm.types import AnnotatedPath, Problem, RecordError, Solution


@dataclass(frozen=True)
class LabelSource:
    name: str
    summary: str
    oracle: bool = False            # reads ground truth: a ceiling, never the product's label
    from_annotation: bool = False   # needs an annotated path (MC values and counts)
    pooled: bool = False            # labels a path from the other paths of its problem too


LABEL_SOURCES = {s.name: s for s in [
    LabelSource("mc", "the prefix's Monte-Carlo value (MM-PRM)", from_annotation=True),
    LabelSource("first-error", "1 before the MC-located first error, 0 at it, later steps unknown",
                from_annotation=True),
    LabelSource("first-error-vote", "first-error; a step it leaves unknown takes the mean first-error label of "
                "the same step text on the problem's other paths", from_annotation=True, pooled=True),
    LabelSource("first-error-shared", "first-error-vote; a step still unknown takes the mean label of the same "
                "text in other problems, where that text is labelled in at least two and all agree "
                "(a step whose verdict does not depend on the problem)", from_annotation=True, pooled=True),
    LabelSource("first-error-arithmetic", "first-error-vote; a step still unknown takes the sympy arithmetic "
                "check's verdict (no ground truth, but more than the annotation)", from_annotation=True, pooled=True),
    LabelSource("survival", "MC(k) / MC(k-1), clipped to [0, 1]", from_annotation=True),
    LabelSource("advantage", "(1 + MC(k) - MC(k-1)) / 2, the process advantage", from_annotation=True),
    LabelSource("arithmetic", "sympy check of the step's plain arithmetic (unknown when it has none)"),
    LabelSource("oracle", "ORACLE: the synthetic generator's verdict on each step (ground truth)", oracle=True),
    LabelSource("oracle-prefix", "ORACLE: the generator's verdicts chained, 0 from the first wrong step",
                oracle=True),
]}
_FROM_COUNTS = {"survival": survival_labels, "advantage": advantage_labels}


def get_source(name: str) -> LabelSource:
    if name not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {name!r}; choose from {', '.join(LABEL_SOURCES)}")
    return LABEL_SOURCES[name]


@dataclass
class LabelledPath:
    """A solution to train on: its problem, steps, and one target in [0, 1] (or None) per step."""

    problem: Problem
    steps: list[str]
    targets: list[float | None]


def step_targets(source: str, problem: Problem, steps: list[str], path: AnnotatedPath | None = None, *,
                 min_rollouts: int = 1, threshold: float = 0.5) -> list[float | None]:
    """One target per step from the named source; `path` (the annotated path of
    these steps) is needed by the sources that read the annotation."""
    spec = get_source(source)
    if spec.pooled:
        raise ValueError(f"label source {source!r} pools the paths of a problem: use label_paths")
    if spec.from_annotation:
        if path is None:
            raise ValueError(f"label source {source!r} reads an annotation's MC values: train on annotated "
                             "paths (paths.jsonl), not on samples")
        if source == "mc":
            return list(path.labels)
        if source == "first-error":
            return first_error_labels(mc_counts(path), min_rollouts, threshold)
        return _FROM_COUNTS[source](mc_counts(path), min_rollouts)
    if source == "arithmetic":
        return _as_targets(ArithmeticJudge().judge(problem, steps))
    local = _as_targets(OracleJudge().judge(problem, steps))
    return local if source == "oracle" else prefix_from_local(local)


def label_paths(source: str, paths: list[AnnotatedPath], *, min_rollouts: int = 1,
                threshold: float = 0.5) -> list[list[float | None]]:
    """Targets for every annotated path; pooled sources see all of them at once."""
    options = dict(min_rollouts=min_rollouts, threshold=threshold)
    if not get_source(source).pooled:
        return [step_targets(source, p.problem(missing_answer=""), p.steps, p, **options) for p in paths]
    voted = vote_by_step_text(paths, label_paths("first-error", paths, **options))
    if source == "first-error-vote":
        return voted
    if source == "first-error-shared":
        return share_across_problems(paths, voted)
    judge = ArithmeticJudge()
    filled = []
    for path, row in zip(paths, voted):
        checked = _as_targets(judge.judge(path.problem(missing_answer=""), path.steps))
        filled.append([t if t is not None else c for t, c in zip(row, checked)])
    return filled


def vote_by_step_text(paths: list[AnnotatedPath], targets: list[list[float | None]]) -> list[list[float | None]]:
    """Fill each unknown target with the mean of the known targets that the same step
    text has in other paths of the same problem (still unknown if it has none there).

    Why: a path's first-error labels stop at its first error, yet a later step there
    (a bar read right after another was misread) often recurs word for word on a
    path where it was labelled. Taking that label assumes a step's verdict belongs to
    its text within the problem, which holds for self-contained steps and is measured
    against the oracle in benchmarks/label_source_quality.py."""
    by_text = _known_labels_by_text(paths, targets)

    def voted(step: str, problem_id: str) -> float | None:
        known = by_text.get(step, {}).get(problem_id)
        return sum(known) / len(known) if known else None

    return _fill_unknown(paths, targets, voted)


def _known_labels_by_text(paths: list[AnnotatedPath],
                          targets: list[list[float | None]]) -> dict[str, dict[str, list[float]]]:
    """Every known target, by step text, then by problem (a path's id is its problem's)."""
    by_text: dict[str, dict[str, list[float]]] = {}
    for path, labels in zip(paths, targets, strict=True):
        for step, label in zip(path.steps, labels):
            if label is not None:
                by_text.setdefault(step, {}).setdefault(path.id, []).append(label)
    return by_text


def _fill_unknown(paths: list[AnnotatedPath], targets: list[list[float | None]],
                  fill) -> list[list[float | None]]:
    """Each unknown target replaced by `fill(step text, problem id)` (which may be None too)."""
    return [[label if label is not None else fill(step, path.id) for step, label in zip(path.steps, labels)]
            for path, labels in zip(paths, targets)]


def share_across_problems(paths: list[AnnotatedPath], targets: list[list[float | None]], *,
                          min_problems: int = 2) -> list[list[float | None]]:
    """Fill each unknown target from the same step text's labels in other problems,
    when the text is labelled in at least `min_problems` of them and they all agree
    (each problem's mean label on the same side of 0.5); the filled target is the mean
    over those problems.

    Why: first-error labels never reach a step after an error, and on a wrong path that
    is often the last one, so the PRM sees a final step only where the readings were
    right. A step whose verdict is a property of its text ("8 + 1 = 9") is labelled
    alike wherever it was labelled; a step that depends on the problem ("bar A is 8":
    right in one chart, wrong in the next) is labelled both ways across problems, and
    the agreement test leaves it unknown. On the demo's annotation 88 of 95 arithmetic
    texts and 3 of 27 reading texts labelled in two or more problems agree
    (benchmarks/label_source_quality.py measures the filled labels against the oracle)."""
    by_text = _known_labels_by_text(paths, targets)

    def shared(step: str, problem_id: str) -> float | None:
        means = [sum(v) / len(v) for pid, v in by_text.get(step, {}).items() if pid != problem_id]
        if len(means) < min_problems:
            return None
        right = sum(m >= 0.5 for m in means)
        return sum(means) / len(means) if right in (0, len(means)) else None

    return _fill_unknown(paths, targets, shared)


def reference_verdicts(problem: Problem, steps: list[str]) -> list[bool | None]:
    """For evaluation only: the generator's verdicts on a synthetic problem, the
    arithmetic check elsewhere."""
    judge: StepJudge = OracleJudge() if isinstance(problem.meta.get("objects"), dict) else ArithmeticJudge()
    return judge.judge(problem, steps)


def _as_targets(verdicts: list[bool | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in verdicts]


def prefix_from_local(local: list[float | None]) -> list[float | None]:
    """Chain local verdicts: 0 once a step is wrong, unknown after an undecided step, else 1."""
    out, state = [], 1.0
    for v in local:
        if v == 0.0:
            state = 0.0
        elif v is None and state == 1.0:
            state = None
        out.append(state)
    return out


def load_labelled(data: str | Path | None = None, *, samples: str | Path | None = None,
                  problems: str | Path | None = None, labels: str = "mc", min_rollouts: int = 1,
                  threshold: float = 0.5, dedupe: bool = True) -> list[LabelledPath]:
    """Training paths from an AnnotatedPath file (`data`) or a samples + problems pair,
    labelled by the source `labels`. Annotated paths come in problem-id order (each
    problem's own in file order): the runner writes problems as they finish, and what a
    PRM learns must not depend on which finished first."""
    get_source(labels)
    if (data is None) == (samples is None):
        raise ValueError("give either data (annotated paths) or samples with problems")
    if data is not None:
        paths = sorted(annotated_paths(Path(data)), key=lambda p: p.id)
        targets = label_paths(labels, paths, min_rollouts=min_rollouts, threshold=threshold)
        out = [LabelledPath(p.problem(missing_answer=""), p.steps, t) for p, t in zip(paths, targets)]
    else:
        if problems is None:
            raise ValueError("samples need their problems file (--problems)")
        out = _from_samples(Path(samples), Path(problems), labels)
    if dedupe:
        seen, unique = set(), []
        for p in out:
            key = (p.problem.id, tuple(p.steps))
            if key not in seen:
                seen.add(key)
                unique.append(p)
        out = unique
    return [p for p in out if p.steps and any(t is not None for t in p.targets)]


def annotated_paths(path: Path) -> list[AnnotatedPath]:
    """An AnnotatedPath file (or a folder holding paths.jsonl), image paths made absolute."""
    if path.is_dir():
        path = path / "paths.jsonl"
    records = load_records(path, AnnotatedPath.from_dict)
    for rec in records:
        try:
            rec.images = absolute_images(rec.images, path.parent)
        except RecordError as e:
            raise RecordError(f"{path}: path {rec.id!r}: {e}") from None
    return records


def _from_samples(samples: Path, problems: Path, labels: str) -> list[LabelledPath]:
    from mmprm.data import load_problems

    by_id = {p.id: p for p in load_problems(problems, strict=True)}
    out, missing = [], 0
    for sol in load_records(samples, Solution.from_dict):
        problem = by_id.get(sol.problem_id)
        if problem is None:
            missing += 1
            continue
        out.append(LabelledPath(problem, sol.steps, step_targets(labels, problem, sol.steps)))
    if missing:
        print(f"{samples}: {missing} solutions skipped, their problems are not in {problems}")
    return out
