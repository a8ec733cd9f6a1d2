"""Choosing among candidates: Best-of-N, majority vote, PRM-weighted vote.

Everything works on many subsets of one problem's candidates at once
(rows of an index matrix), which is what evaluation at N < pool size needs.
A tie is never broken by position: the result is the expected accuracy
under a uniformly random tie-break (the share of tied choices that are
right). Answers are grouped by mathematical equivalence beforehand
(`group_answers`), so "0.5" and "1/2" vote together.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from mmprm.grading import Grader
from mmprm.grading.equivalence import as_number
from mmprm.grading.extract import normalize_answer


def group_answers(answers: list[str | None], grader: Grader) -> np.ndarray:
    """Group ids for answers (equivalent answers share one); -1 for no answer.
    Plain numbers are grouped by value directly; anything else is compared
    with the grader against the groups found so far."""
    reps: list[str] = []
    symbolic: list[int] = []          # groups whose representative is not a plain number
    by_text: dict[str, int] = {}
    by_value: dict[Fraction, int] = {}
    ids = np.full(len(answers), -1, dtype=np.int64)
    for i, answer in enumerate(answers):
        key = normalize_answer(answer) if answer is not None else ""
        if not key:
            continue
        if key not in by_text:
            value = as_number(key)
            match = by_value.get(value) if value is not None else None
            if match is None:
                pool = symbolic if value is not None else range(len(reps))
                match = next((g for g in pool if grader.grade(reps[g], key).equal), None)
            if match is None:
                reps.append(key)
                match = len(reps) - 1
                if value is None:
                    symbolic.append(match)
            if value is not None:
                by_value.setdefault(value, match)
            by_text[key] = match
        ids[i] = by_text[key]
    return ids


def best_of_n(values: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """values, correct: (subsets, N). Expected accuracy of picking the top value."""
    top = values.max(axis=1, keepdims=True)
    tied = values == top
    return (tied & correct).sum(axis=1) / tied.sum(axis=1)


def vote(groups: np.ndarray, weights: np.ndarray, group_correct: np.ndarray) -> np.ndarray:
    """groups, weights: (subsets, N); group_correct: (G,). Expected accuracy of
    the answer group with the largest total weight; 0 where no candidate has
    an answer."""
    subsets, width = groups.shape
    n_groups = max(1, len(group_correct))
    valid = groups >= 0
    flat = (np.arange(subsets)[:, None] * n_groups + np.where(valid, groups, 0))[valid]
    totals = np.bincount(flat, weights=weights[valid], minlength=subsets * n_groups).reshape(subsets, n_groups)
    present = np.bincount(flat, minlength=subsets * n_groups).reshape(subsets, n_groups) > 0
    masked = np.where(present, totals, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    tied = present & (masked == top)
    wins = (tied & group_correct[None, :n_groups]).sum(axis=1)
    count = tied.sum(axis=1)
    return np.where(count > 0, wins / np.maximum(count, 1), 0.0)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def subsets(pool: int, n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random subsets of size n (rows of indices); the pool itself when n == pool."""
    if n >= pool:
        return np.arange(pool)[None, :]
    return np.argsort(rng.random((count, pool)), axis=1)[:, :n]
