"""Step labels computed from an annotation's Monte-Carlo counts alone.

Every annotated path carries `meta["mc_counts"]`: for the empty prefix and
for the prefix ending at each step, [right, total] rollouts that reached the
reference answer from it (None where the prefix was never estimated; the
last step's entry is the solution's own outcome, [0 or 1, 1]). The sources
here read nothing else: no checker, no generator.

- `mc`: the prefix's MC value, MM-PRM's label. It asks every step to predict
  the whole outcome, which on the demo's task trains a PRM that ranks below
  chance (docs/results.md).
- `first-error`: where the path's prefixes stop being solvable (see
  `first_error_labels`). Steps before the located first error are 1, the
  first error 0, later steps unknown.
- `survival`: MC(k) / MC(k-1), clipped to [0, 1]: the chance that step k
  keeps a solvable prefix solvable; unknown once MC(k-1) is 0, or where an
  estimate rests on fewer than `min_rollouts` rollouts.
- `advantage`: the process advantage of Setlur et al. (2024), MC(k) - MC(k-1),
  mapped from [-1, 1] to [0, 1] as (1 + A) / 2 (the PAV's own scale is
  the advantage; a BCE head needs a target in [0, 1]); unknown as for survival.
"""

from __future__ import annotations

from mmprm.types import AnnotatedPath, RecordError

Counts = list[list[int] | None]


def mc_counts(path: AnnotatedPath) -> Counts:
    """The path's [right, total] per prefix, root first; a clear error when it has none."""
    counts = path.meta.get("mc_counts")
    if counts is None:
        raise RecordError(f"annotated path {path.id!r} has no meta.mc_counts: its labels came from an annotation "
                          "made before MC counts were recorded; annotate again (or rebuild paths from the trees)")
    if not isinstance(counts, list) or len(counts) != len(path.steps) + 1:
        raise RecordError(f"annotated path {path.id!r}: meta.mc_counts needs {len(path.steps) + 1} entries "
                          "(the empty prefix, then one per step)")
    for c in counts:
        if c is not None and not (isinstance(c, list) and len(c) == 2 and 0 <= c[0] <= c[1]):
            raise RecordError(f"annotated path {path.id!r}: meta.mc_counts entry {c!r} is not [right, total]")
    return counts


def _value(counts: Counts, k: int, min_rollouts: int) -> float | None:
    """MC of prefix k when it rests on enough rollouts (the last entry is exact)."""
    c = counts[k]
    if c is None or c[1] == 0 or (c[1] < min_rollouts and k < len(counts) - 1):
        return None
    return c[0] / c[1]


def first_error_labels(counts: Counts, min_rollouts: int = 1, threshold: float = 0.5) -> list[float | None]:
    """1 before the first error, 0 at it, None after it (and where it cannot be placed).

    Walking down the path, prefix k is still solvable when its MC is above 0
    and at least `threshold` times the MC of the last solvable prefix (the
    empty prefix at first). At 0 that is MM-PRM's "MC > 0"; above 0 one lucky rollout (a wrong
    reading whose slip lands on the right answer anyway) no longer makes a
    wrong step look right. An MC estimate from fewer than `min_rollouts`
    rollouts is unknown (the last step's is exact); when the first failing
    prefix follows unknown ones, the error lies among them and all are None.
    """
    n = len(counts) - 1
    reference = _value(counts, 0, min_rollouts)
    if not reference:
        return [None] * n
    labels: list[float | None] = [None] * n
    pending: list[int] = []  # steps whose prefixes are unknown since the last solvable one
    for k in range(1, n + 1):
        value = _value(counts, k, min_rollouts)
        if value is None:
            pending.append(k)
        elif value > 0 and value >= threshold * reference:
            for j in pending + [k]:
                labels[j - 1] = 1.0
            pending, reference = [], value
        else:
            if not pending:
                labels[k - 1] = 0.0
            break
    return labels


def survival_labels(counts: Counts, min_rollouts: int = 1) -> list[float | None]:
    out: list[float | None] = []
    for k in range(1, len(counts)):
        before, after = _value(counts, k - 1, min_rollouts), _value(counts, k, min_rollouts)
        out.append(None if before is None or after is None or before == 0 else min(1.0, after / before))
    return out


def advantage_labels(counts: Counts, min_rollouts: int = 1) -> list[float | None]:
    out: list[float | None] = []
    for k in range(1, len(counts)):
        before, after = _value(counts, k - 1, min_rollouts), _value(counts, k, min_rollouts)
        out.append(None if before is None or after is None or before == 0 else (1.0 + after - before) / 2)
    return out
