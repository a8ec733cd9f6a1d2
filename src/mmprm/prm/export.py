"""Training paths in the formats PRM trainers read.

- `annotated`: mmprm's AnnotatedPath JSONL (what `annotate` writes).
- `stepwise`: the stepwise-supervision layout of Hugging Face PRM datasets
  and TRL: `prompt`, `completions` (the steps), `labels` (bool: label > 0),
  plus `mc` (the soft labels) and `images`.
- `internvl`: MM-PRM's InternVL conversation layout: `image`, and
  `conversations` whose human turn is "Question: …\\nProcess: step<prm>…" and
  whose gpt turn holds the labels. The gpt turn's labels are written as JSON
  text (MM-PRM writes a bare list) so that both turns have one type and the
  file loads with `datasets`; the floats are also in `labels`.
Image paths stay relative to the output file's folder. `labels` names the
label source (mmprm.labels) whose targets are written; a path is cut before
the first step that source leaves unknown.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from mmprm.annotate.tree import filter_paths
from mmprm.io import Rejected, RejectLog, absolute_images, read_records, write_jsonl
from mmprm.output import refuse_input_as_output
from mmprm.policy.prompt import question_text
from mmprm.prm.formats import mm_prm_text
from mmprm.types import AnnotatedPath, RecordError

FORMATS = ("annotated", "stepwise", "internvl")


def to_stepwise(p: AnnotatedPath) -> dict:
    return {"id": p.id, "prompt": question_text(p.problem(missing_answer="?")), "completions": p.steps,
            "labels": [v > 0 for v in p.labels], "mc": p.labels, "images": p.images}


def to_internvl(p: AnnotatedPath, index: int) -> dict:
    human = mm_prm_text(p.problem(missing_answer="?"), p.steps)
    if p.images:
        human = "<image>\n" * len(p.images) + human
    record = {"id": index, "conversations": [{"from": "human", "value": human},
                                             {"from": "gpt", "value": json.dumps(p.labels)}],
              "labels": p.labels, "problem_id": p.id}
    if len(p.images) == 1:
        record["image"] = p.images[0]
    elif p.images:
        record["image"] = list(p.images)
    return record


def relabel(path: AnnotatedPath, source: str, targets: list[float | None]) -> AnnotatedPath | None:
    """The path with `targets` (from the label source `source`) as its labels, cut before
    its first unknown step (the formats hold a number per step); None when not even the
    first step is known. The source's name goes into `meta.label_source`."""
    known = next((i for i, t in enumerate(targets) if t is None), len(targets))
    if known == 0:
        return None
    return replace(path, steps=path.steps[:known], labels=[float(t) for t in targets[:known]],
                   meta={**path.meta, "label_source": source})


def export_paths(paths_file: str | Path, out: str | Path, fmt: str, *, balance: bool = False,
                 seed: int = 0, labels: str = "mc", **label_options) -> int:
    """Write `paths_file` in format `fmt` to `out`, labelled by the label source `labels`
    (mmprm.labels; "mc" keeps the annotated MC values); returns the number written.
    Bad lines and paths whose images are missing go to `<out>.rejected.jsonl`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    paths_file, out = Path(paths_file), Path(out)
    refuse_input_as_output([out], [paths_file])
    paths = _readable_paths(paths_file, out)
    if labels != "mc":
        from mmprm.labels import label_paths

        targets = label_paths(labels, paths, **label_options)
        paths = [r for p, t in zip(paths, targets) if (r := relabel(p, labels, t)) is not None]
    if balance:
        paths = filter_paths(paths, min_steps=1, balance=True, seed=seed)
    for p in paths:  # keep image paths relative to the new file's folder
        p.images = [ref if ref.startswith("data:") else
                    os.path.relpath(paths_file.parent.resolve() / ref, out.parent.resolve()) for ref in p.images]
    if fmt == "annotated":
        rows = [p.to_dict() for p in paths]
    elif fmt == "stepwise":
        rows = [to_stepwise(p) for p in paths]
    else:
        rows = [to_internvl(p, i) for i, p in enumerate(paths)]
    return write_jsonl(out, rows)


def _readable_paths(paths_file: Path, out: Path) -> list[AnnotatedPath]:
    """The paths of the file that parse and whose images exist; the others rejected, named."""
    rejects = RejectLog(out, echo=lambda m: print(m, file=sys.stderr))
    paths = []
    for lineno, rec in read_records(paths_file, AnnotatedPath.from_dict):
        if not isinstance(rec, Rejected):
            try:
                absolute_images(rec.images, paths_file.parent)
            except RecordError as e:
                rec = Rejected(str(paths_file), lineno, str(e))
        if isinstance(rec, Rejected):
            rejects.add(rec)
        else:
            paths.append(rec)
    rejects.close()
    return paths
