"""One number per solution from its step scores (MM-PRM's set of rules), and
which answer group counts as right: the one definition that ranking metrics,
selection, search and reports share.

Scores of bounded PRMs are probabilities in [0, 1]. Unbounded scorers
(reward-model logits, log-probabilities) are used as they are by the
order-only rules (min, last, mean, max); `product` and `sum_logit` need
probabilities and logits, so unbounded scores are read as logits there:
product multiplies their logistic values, sum_logit adds them as they are.
"""

from __future__ import annotations

import math

import numpy as np

AGGREGATIONS = ("min", "last", "product", "mean", "sum_logit", "max")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def aggregate(scores: list[float], how: str, *, bounded: bool = True) -> float:
    """Aggregate one solution's step scores; an empty solution gets -inf."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose from {', '.join(AGGREGATIONS)}")
    if not scores:
        return -math.inf
    s = np.asarray(scores, dtype=np.float64)
    if how == "min":
        return float(s.min())
    if how == "max":
        return float(s.max())
    if how == "last":
        return float(s[-1])
    if how == "mean":
        return float(s.mean())
    if how == "product":
        p = s if bounded else 1.0 / (1.0 + np.exp(-s))
        return float(np.prod(p))
    return float((_logit(s) if bounded else s).sum())  # sum_logit


def to_weight(value: float, how: str, *, bounded: bool) -> float:
    """A non-negative vote weight for PRM-weighted majority. Probabilities
    (and products of them) are used as they are; sums of logits and
    unbounded scores go through the logistic function. Never a log."""
    if value == -math.inf:
        return 0.0
    if how == "sum_logit" or not bounded:
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, value))))
    return max(0.0, value)


def scores_are_bounded(step_scores) -> bool:
    """Whether every score is a probability in [0, 1] (else they are read as logits)."""
    return all(0.0 <= v <= 1.0 for scores in step_scores for v in scores)


def group_is_correct(member_correct: np.ndarray) -> bool:
    """An answer group (equivalent answers) is right when most of its members were
    graded right; members of one group disagree only where grading is inconsistent."""
    return bool(np.asarray(member_correct, dtype=float).mean() > 0.5) if len(member_correct) else False
