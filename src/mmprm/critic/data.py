"""`mmprm critic build-data`: teacher critiques of annotated paths, filtered by MC, as a
critic's training file.

Each annotated path (a solution the policy wrote, with its MC counts) gets a critique from
the teacher; GM-PRM's filter keeps those that parse and whose first error agrees with MC
(`filtered=False` keeps every one that parses, for the unfiltered comparison). Records
hold the problem (images beside the output, in `images/`), the steps and the critique text
in its layout; `OUT.report.json` says how many were kept and why the rest were not.

`answer_negatives=N` also gives the teacher N copies of each path MC calls right, with the
last step's stated result changed to one the grader rejects (`mmprm.labels.negatives`).
A copy's last count is that grade, [0, 1], so MC places its first error at the last step
(a copy where MC could not, its earlier counts missing, is not made), and the filter
checks the teacher against it as for any path. Wrong final steps are otherwise rare in a
policy's own solutions, and a critic that seldom sees one learns to pass every final step.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mmprm.critic.filter import filter_critiques, mc_first_error
from mmprm.grading import Grader, RuleGrader
from mmprm.io import (
    Rejected,
    RejectLog,
    absolute_images,
    read_records,
    rehome_images,
    write_json_atomic,
    write_jsonl,
)
from mmprm.labels.negatives import changed_results
from mmprm.output import refuse_input_as_output
from mmprm.types import AnnotatedPath, Problem


def build_critic_data(paths_file: str | Path, out: str | Path, teacher, *, layout: str = "compact",
                      min_rollouts: int = 2, filtered: bool = True, answer_negatives: int = 0,
                      grader: Grader | None = None) -> dict:
    paths_file, out = Path(paths_file), Path(out)
    if answer_negatives < 0:
        raise ValueError(f"answer_negatives must be at least 0, got {answer_negatives}")
    refuse_input_as_output([out], [paths_file])
    grader = grader or RuleGrader()
    rejects = RejectLog(out, echo=print)
    pairs, sources = [], {}  # sources: id(path) -> (line, critique text, problem with absolute images)
    made = 0
    for lineno, path in read_records(paths_file, AnnotatedPath.from_dict):
        if isinstance(path, Rejected):
            rejects.add(path)
            continue
        problem = path.problem()
        problem.images = absolute_images(path.images, paths_file.parent)
        negatives = _answer_negatives(path, problem, grader, answer_negatives, min_rollouts)
        made += len(negatives)
        for one in [path, *negatives]:
            text = teacher.critique(problem, one.steps)
            pairs.append((one, text))
            sources[id(one)] = (lineno, text, problem)
    kept, report = filter_critiques(pairs, min_rollouts=min_rollouts, layout=layout, filtered=filtered)
    records = []
    for path, critique in kept:
        lineno, text, problem = sources[id(path)]
        suffix = f"-negative{path.meta['answer_negative']}" if "answer_negative" in path.meta else ""
        records.append({"id": f"{path.id}-{lineno}{suffix}", "question": path.question, "answer": path.answer,
                        "choices": path.choices, "steps": path.steps, "critique": text, "layout": layout,
                        "first_error": critique.first_error,
                        "images": rehome_images(problem.images, out.parent, out.parent / "images", path.id)})
    rejects.close()
    write_jsonl(out, records)
    summary = {"teacher": teacher.name, "layout": layout, "min_rollouts": min_rollouts, "filtered": filtered,
               "answer_negatives": answer_negatives, "negatives_made": made,
               "negatives_kept": sum("answer_negative" in path.meta for path, _ in kept),
               "rejected_paths": rejects.count, **report.to_dict()}
    write_json_atomic(out.with_name(out.name + ".report.json"), summary)
    return summary


def _answer_negatives(path: AnnotatedPath, problem: Problem, grader: Grader, per_path: int,
                      min_rollouts: int) -> list[AnnotatedPath]:
    """Copies of a path MC calls right with its stated result changed: graded wrong, so their
    last count is [0, 1] and their last label 0; none where MC would not place the copy's
    first error at its last step."""
    if not per_path or mc_first_error(path, min_rollouts) is not None:
        return []
    meta = {**path.meta, "mc_counts": path.meta["mc_counts"][:-1] + [[0, 1]]}
    if isinstance(path.meta.get("hard_labels"), list):
        meta["hard_labels"] = path.meta["hard_labels"][:-1] + [False]
    if "end" in meta:  # the tree's note on how the path ended
        meta["end"] = "negative"
    copies = [replace(path, steps=path.steps[:-1] + [last], labels=path.labels[:-1] + [0.0],
                      meta={**meta, "answer_negative": k})
              for k, last in enumerate(changed_results(problem, path.steps, grader, per_path=per_path), 1)]
    return [c for c in copies if mc_first_error(c, min_rollouts) == len(c.steps) - 1]
