"""Scoring: every step of a candidate in one forward pass, candidates batched.

Rows are sorted by length before batching (less padding) and put back in
order after, and padding never changes a score, so a candidate's scores do
not depend on what else is in the batch. `score_file` fills `step_scores`
of a samples.jsonl, appending each problem's solutions as it finishes and
skipping finished problems on a rerun.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from mmprm.io import Rejected, RejectLog, read_records
from mmprm.output import OutputLayout, ResumableOutput, refuse_input_as_output
from mmprm.prm.base import PRM
from mmprm.prm.config import ScoreConfig
from mmprm.prm.formats import Encoded, collate, encode
from mmprm.prm.model import PRMModel, load_prm_model
from mmprm.prm.schemes import Scheme
from mmprm.types import Problem, Solution


class StepPRM(PRM):
    """A PRM whose network reads one score per step position (trained here or published)."""

    bounded = True

    def __init__(self, model: PRMModel, processor, scheme: Scheme, *, batch_size: int = 16,
                 padding_side: str = "right", device: str | torch.device | None = None, name: str | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.processor, self.scheme = processor, scheme
        self.batch_size, self.padding_side = batch_size, padding_side
        self.name = name or f"prm:{scheme.name}"
        self._images: dict = {}
        self._pixels: dict = {}

    @classmethod
    def from_pretrained(cls, path: str | Path, *, trust_remote_code: bool = False, **options) -> StepPRM:
        """A PRM folder written by `train_prm` (or `save_prm`), offline."""
        model, processor, scheme = load_prm_model(path, trust_remote_code=trust_remote_code)
        return cls(model, processor, scheme, name=f"prm:{path}", **options)

    def score(self, problem: Problem, candidates: list[list[str]]) -> list[list[float]]:
        return self.score_many([(problem, candidates)])[0]

    def score_many(self, items: list[tuple[Problem, list[list[str]]]]) -> list[list[list[float]]]:
        rows = [self.encode(problem, steps) for problem, cands in items for steps in cands]
        flat: list[list[float]] = [[] for _ in rows]
        for index, batch in self.batches(rows):
            with torch.inference_mode():
                probs = torch.sigmoid(self.model(**batch)).cpu().tolist()
            start = 0
            for i in index:
                n = len(rows[i].positions)
                flat[i] = probs[start : start + n]
                start += n
        out, k = [], 0
        for _, cands in items:
            out.append(flat[k : k + len(cands)])
            k += len(cands)
        return out

    def encode(self, problem: Problem, steps: list[str]) -> Encoded:
        return encode(self.scheme, self.processor, problem, steps, self._images)

    def batches(self, rows: list[Encoded]) -> Iterator[tuple[list[int], dict]]:
        """(row indices, batch on the device) in length order; the scoring path's only collate."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i].input_ids))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            batch = collate([rows[i] for i in index], self.processor, padding_side=self.padding_side,
                            pixel_cache=self._pixels)
            yield index, {k: v.to(self.device) for k, v in batch.items()}
        if len(self._pixels) > 256:  # a cache for the candidates of a few problems, not a dataset
            self._pixels.clear()
            self._images.clear()

    def close(self) -> None:
        self._pixels.clear()
        self._images.clear()


@dataclass
class ScoreSummary:
    problems: int
    skipped: int
    solutions: int
    missing_problems: int
    seconds: float
    output: str

    def __str__(self) -> str:
        return (f"scored {self.solutions} solutions of {self.problems} problems ({self.skipped} already done, "
                f"{self.missing_problems} not in the problems file) in {self.seconds:.1f} s -> {self.output}")


def score_with(prm: str, problems_path: str | Path, samples_path: str | Path, out_path: str | Path,
               cfg: ScoreConfig, *, trust_remote_code: bool = False) -> ScoreSummary:
    """`mmprm score`: the PRM built from its spec (mmprm.prm.load), then `score_file`."""
    from mmprm.prm.load import load_prm

    refuse_input_as_output([out_path], [problems_path, samples_path])  # before a model is loaded
    OutputLayout.file(out_path).ensure_folder()
    scorer = load_prm(prm, trust_remote_code=trust_remote_code, batch_size=cfg.batch_size)
    try:
        return score_file(scorer, problems_path, samples_path, out_path, batch_size=cfg.problems_per_chunk)
    finally:
        scorer.close()


def score_file(prm: PRM, problems_path: str | Path, samples_path: str | Path, out_path: str | Path, *,
               batch_size: int = 8, progress: bool = True) -> ScoreSummary:
    """Copy `samples_path` to `out_path` with `step_scores` filled by `prm`.

    `batch_size` problems are scored together (their candidates share forward
    batches); each problem's solutions are appended as soon as it is scored.
    `out` is a resumable output (mmprm.output) whose setting is the PRM: a rerun
    skips finished problems and redoes one cut off mid-write.
    """
    from mmprm.data import load_problems

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 problem, got {batch_size}")
    start = time.time()
    out = Path(out_path)
    refuse_input_as_output([out], [problems_path, samples_path])
    rejects = RejectLog(out, echo=tqdm.write)
    problems = {p.id: p for p in load_problems(problems_path, rejects=rejects)}
    groups: dict[str, list[Solution]] = {}
    for _, rec in read_records(samples_path, Solution.from_dict):
        if isinstance(rec, Rejected):
            rejects.add(rec)
        else:
            groups.setdefault(rec.problem_id, []).append(rec)
    rejects.close()
    missing = [pid for pid in groups if pid not in problems]
    if missing:
        tqdm.write(f"{len(missing)} problems of {samples_path} are not in {problems_path}; their solutions are skipped")
    settings = {"command": "score", "prm": prm.name}
    output = ResumableOutput(OutputLayout.file(out), settings, inputs=[problems_path, samples_path])
    with output.open(pid for pid in groups if pid in problems):
        todo = [pid for pid in groups if pid in problems and pid not in output.done]
        written = 0
        with tqdm(total=len(todo), desc="score", unit="prob", disable=not progress) as bar:
            for i in range(0, len(todo), batch_size):
                chunk = todo[i : i + batch_size]
                scores, notes = prm.explain_many([(problems[pid], [s.steps for s in groups[pid]]) for pid in chunk])
                for pid, per_solution, per_note in zip(chunk, scores, notes):
                    for sol, step_scores, note in zip(groups[pid], per_solution, per_note):
                        sol.step_scores = [float(x) for x in step_scores]
                        sol.meta = {**sol.meta, "prm": prm.name, **({"critique": note} if note else {})}
                    output.write(pid, groups[pid], solutions=len(groups[pid]))
                    written += len(groups[pid])
                bar.update(len(chunk))
    done = [pid for pid in groups if pid in problems and pid not in todo]
    return ScoreSummary(len(groups), len(done), written, len(missing), time.time() - start, str(out))

