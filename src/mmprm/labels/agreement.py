"""Mask the step labels a judge model disagrees with most (confident learning).

Why: MC-derived labels are noisy where the policy's rollouts mislead (a right
step whose rollouts all fail, a misread that rollouts still carry to the
answer), and a PRM trained on them learns the noise. A judge that needs no
labels, a policy checkpoint's own likelihood of each step (`LikelihoodPRM`,
usually the checkpoint the PRM starts from), is calibrated to the labels with
a one-feature logistic fit; the labelled steps whose labels it finds least
likely (the highest cross-entropy under that fit) are masked, a `share` of
them. Nothing here reads ground truth: the judge sees the problem and the
steps, and the labels come from the named source. After Northcutt et al.,
"Confident Learning" (2021), with the judge's calibrated score in place of
out-of-fold predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from mmprm.labels.sources import LabelledPath

if TYPE_CHECKING:
    from mmprm.prm.base import PRM


@dataclass
class Agreement:
    """What masking did: labelled steps before, masked, the loss above which a label was
    masked, and the calibration (P(right) = sigmoid(scale * score + offset))."""

    labelled: int
    masked: int
    threshold: float
    scale: float
    offset: float

    def to_dict(self) -> dict:
        return {"labelled": self.labelled, "masked": self.masked, "threshold": round(self.threshold, 4),
                "scale": round(self.scale, 4), "offset": round(self.offset, 4)}


def mask_disagreements(paths: list[LabelledPath], judge: PRM, share: float, *, batch: int = 64
                       ) -> tuple[list[LabelledPath], Agreement]:
    """`paths` with the `share` of labelled steps the calibrated `judge` disagrees with
    most set to None (paths left with no label are dropped), and what was done."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"the share of labels to mask must be in (0, 1), got {share}")
    scores = _judge_scores(paths, judge, batch)
    cells = [(i, k) for i, p in enumerate(paths) for k, t in enumerate(p.targets) if t is not None]
    if not cells:
        raise ValueError("no labelled step to judge")
    x = torch.tensor([scores[i][k] for i, k in cells], dtype=torch.float64)
    y = torch.tensor([paths[i].targets[k] for i, k in cells], dtype=torch.float64)
    scale, offset = _calibrate(x, y)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(scale * x + offset, y, reduction="none")
    masked = min(len(cells), round(share * len(cells)))
    worst = set(torch.argsort(loss, descending=True, stable=True)[:masked].tolist())
    threshold = float(loss[list(worst)].min()) if worst else math.inf
    out = [replace(p, targets=list(p.targets)) for p in paths]
    for j in worst:
        i, k = cells[j]
        out[i].targets[k] = None
    kept = [p for p in out if any(t is not None for t in p.targets)]
    return kept, Agreement(len(cells), masked, threshold, float(scale), float(offset))


def _judge_scores(paths: list[LabelledPath], judge: PRM, batch: int) -> list[list[float]]:
    """The judge's score of every step of every path (the judge batches across a call's paths)."""
    scores: list[list[float]] = []
    for start in range(0, len(paths), batch):
        items = [(p.problem, [p.steps]) for p in paths[start : start + batch]]
        scores += [list(per_problem[0]) for per_problem in judge.score_many(items)]
    return scores


def _calibrate(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Logistic regression of the (soft) labels on the score: Newton's method, a few steps."""
    w = torch.zeros(2, dtype=torch.float64)
    features = torch.stack([x, torch.ones_like(x)], dim=1)
    for _ in range(50):
        p = torch.sigmoid(features @ w)
        grad = features.T @ (p - y)
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + 1e-6 * torch.eye(2, dtype=torch.float64)
        step = torch.linalg.solve(hessian, grad)
        w = w - step
        if float(step.abs().max()) < 1e-10:
            break
    return float(w[0]), float(w[1])
