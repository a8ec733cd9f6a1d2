"""Grade a file of (gold, pred) pairs, one JSON verdict a line, in order."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from mmprm.grading.grader import Grader, Verdict
from mmprm.io import Rejected, RejectLog, iter_json_lines


def _pair(obj: object) -> tuple[str, str | None, list[str] | None]:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    gold = obj.get("gold")
    if gold is None or not str(gold).strip():
        raise ValueError("missing or empty 'gold'")
    for key in ("gold", "pred"):
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            raise ValueError(f"'{key}' must be text or a number, got {type(value).__name__}")
    pred = obj.get("pred")
    choices = obj.get("choices")
    if choices is not None and not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
        raise ValueError("'choices' must be a list of strings")
    return str(gold), None if pred is None else str(pred), choices


def grade_file(path: str | Path, grader: Grader, *, out: str | Path | None = None,
               workers: int = 2, progress: bool = True) -> dict:
    """Grade every line of `path`; results go to `out` (or stdout) in input
    order; bad lines go to `<out>.rejected.jsonl` (or stderr). Returns counts."""
    from mmprm.output import refuse_input_as_output

    path = Path(path)
    if out is not None:
        refuse_input_as_output([out], [path])
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    jobs: list[tuple[int, tuple]] = []
    rejects = RejectLog(out, echo=lambda m: print(m, file=sys.stderr))
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, Rejected):
            rejects.add(obj)
            continue
        try:
            jobs.append((lineno, _pair(obj)))
        except ValueError as e:
            rejects.add(Rejected(str(path), lineno, str(e)))

    def run(job: tuple[int, tuple]) -> Verdict:
        gold, pred, choices = job[1]
        return grader.grade(gold, pred, choices)

    sink = open(out, "w", encoding="utf-8") if out else sys.stdout
    equal = 0
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for (lineno, _), verdict in tqdm(zip(jobs, pool.map(run, jobs)), total=len(jobs),
                                             desc="grade", unit="ans", disable=not progress):
                equal += verdict.equal
                sink.write(json.dumps({"line": lineno, **verdict.to_dict()}, ensure_ascii=False) + "\n")
    finally:
        if out:
            sink.close()
        rejects.close()
    return {"graded": len(jobs), "equal": equal, "rejected": rejects.count}
