"""`mmprm critic build-data`: teacher critiques of annotated paths, filtered by MC, as a
critic's training file.

Each annotated path (a solution the policy wrote, with its MC counts) gets a critique from
the teacher; GM-PRM's filter keeps those that parse and whose first error agrees with MC
(`filtered=False` keeps every one that parses, for the unfiltered comparison). Records
hold the problem (images beside the output, in `images/`), the steps and the critique text
in its layout; `OUT.report.json` says how many were kept and why the rest were not.
"""

from __future__ import annotations

from pathlib import Path

from mmprm.critic.filter import filter_critiques
from mmprm.io import (
    Rejected,
    RejectLog,
    absolute_images,
    read_records,
    rehome_images,
    write_json_atomic,
    write_jsonl,
)
from mmprm.output import refuse_input_as_output
from mmprm.types import AnnotatedPath


def build_critic_data(paths_file: str | Path, out: str | Path, teacher, *, layout: str = "compact",
                      min_rollouts: int = 2, filtered: bool = True) -> dict:
    paths_file, out = Path(paths_file), Path(out)
    refuse_input_as_output([out], [paths_file])
    rejects = RejectLog(out, echo=print)
    pairs, sources = [], {}  # sources: id(path) -> (line, critique text, problem with absolute images)
    for lineno, path in read_records(paths_file, AnnotatedPath.from_dict):
        if isinstance(path, Rejected):
            rejects.add(path)
            continue
        problem = path.problem()
        problem.images = absolute_images(path.images, paths_file.parent)
        text = teacher.critique(problem, path.steps)
        pairs.append((path, text))
        sources[id(path)] = (lineno, text, problem)
    kept, report = filter_critiques(pairs, min_rollouts=min_rollouts, layout=layout, filtered=filtered)
    records = []
    for path, critique in kept:
        lineno, text, problem = sources[id(path)]
        records.append({"id": f"{path.id}-{lineno}", "question": path.question, "answer": path.answer,
                        "choices": path.choices, "steps": path.steps, "critique": text, "layout": layout,
                        "first_error": critique.first_error,
                        "images": rehome_images(problem.images, out.parent, out.parent / "images", path.id)})
    rejects.close()
    write_jsonl(out, records)
    summary = {"teacher": teacher.name, "layout": layout, "min_rollouts": min_rollouts, "filtered": filtered,
               "rejected_paths": rejects.count, **report.to_dict()}
    write_json_atomic(out.with_name(out.name + ".report.json"), summary)
    return summary
