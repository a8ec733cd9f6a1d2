"""Step-error detection, as ProcessBench measures it.

A PRM predicts the first wrong step of a solution as the first step it
scores below a threshold (-1: none). ProcessBench reports the accuracy on
solutions with an error (the predicted index must be the labelled one), the
accuracy on correct solutions (must predict -1), and their harmonic mean
(F1). The threshold is given, or chosen to maximise F1 on a held-out
calibration split and then reported on the rest.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mmprm.data.adapters import processbench
from mmprm.data.convert import iter_raw
from mmprm.io import Rejected, RejectLog, absolute_images, read_records
from mmprm.prm.base import PRM
from mmprm.prm.metrics import choose_threshold, predict_first_error, processbench_metrics
from mmprm.seeds import derive_seed
from mmprm.types import AnnotatedPath, RecordError


def first_error_of(path: AnnotatedPath) -> int:
    """The labelled first wrong step: `meta.first_error`, else the first 0 label."""
    if "first_error" in path.meta:
        return int(path.meta["first_error"])
    return next((i for i, v in enumerate(path.labels) if v == 0.0), -1)


def load_cases(path: str | Path, rejects: RejectLog | None = None) -> list[AnnotatedPath]:
    """ProcessBench's own JSON, or annotated paths (JSONL)."""
    path = Path(path)
    cases: list[AnnotatedPath] = []

    def reject(r: Rejected) -> None:
        if rejects is not None:
            rejects.add(r)

    if path.suffix == ".json":
        for where, raw in iter_raw(path):
            try:
                cases.append(processbench(raw))
            except RecordError as e:
                reject(Rejected(str(path), where, f"item {where}: {e}"))
        return cases
    for lineno, rec in read_records(path, AnnotatedPath.from_dict):
        if isinstance(rec, Rejected):
            reject(rec)
            continue
        try:
            rec.images = absolute_images(rec.images, path.parent)
        except RecordError as e:
            reject(Rejected(str(path), lineno, str(e)))
            continue
        cases.append(rec)
    return cases


def evaluate_steps_file(prm: str, data: str | Path, *, out: str | Path | None = None,
                        threshold: float | None = None, seed: int = 0) -> dict:
    """`mmprm evaluate-steps`: the cases of `data` (bad ones reported, and saved beside
    `out` when given), the PRM built from its spec, the report (also written to `out`)."""
    from mmprm.io import write_json_atomic
    from mmprm.output import refuse_input_as_output
    from mmprm.prm.load import load_prm

    if out is not None:
        refuse_input_as_output([out], [data])
    rejects = RejectLog(out, echo=tqdm.write)
    cases = load_cases(data, rejects)
    rejects.close()
    if not cases:
        raise ValueError(f"{data}: no usable cases ({rejects.count} rejected)")
    scorer = load_prm(prm)
    try:
        report = evaluate_steps(scorer, cases, threshold=threshold, seed=seed)
    finally:
        scorer.close()
    report["rejected"] = rejects.count
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, report)
    return report


def evaluate_steps(prm: PRM, cases: list[AnnotatedPath], *, threshold: float | None = None,
                   calibration_fraction: float = 0.5, seed: int = 0, batch: int = 16,
                   progress: bool = True) -> dict:
    scores: list[list[float]] = []
    for i in tqdm(range(0, len(cases), batch), desc="score steps", unit="batch", disable=not progress):
        chunk = cases[i : i + batch]
        items = [(c.problem(missing_answer="?"), [c.steps]) for c in chunk]
        scores += [per_problem[0] for per_problem in prm.score_many(items)]
    labels = [first_error_of(c) for c in cases]
    report: dict = {"cases": len(cases)}
    if threshold is None:
        calib = [derive_seed(seed, c.id) % 1000 < 1000 * calibration_fraction for c in cases]
        threshold = choose_threshold([s for s, k in zip(scores, calib) if k], [y for y, k in zip(labels, calib) if k])
        held = [i for i, k in enumerate(calib) if not k]
        report["threshold_source"] = f"chosen for F1 on a {calibration_fraction:.0%} calibration split"
    else:
        held = list(range(len(cases)))
        report["threshold_source"] = "given"
    report["threshold"] = threshold
    predicted = [predict_first_error(scores[i], threshold) for i in held]
    report.update(processbench_metrics(predicted, [labels[i] for i in held]))
    report["evaluated"] = len(held)
    return report
