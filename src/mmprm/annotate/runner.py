"""Run an annotation algorithm over many problems, crash-safe and batched.

Many problems are in flight at once: each is an algorithm generator waiting
on one MC query. Queries go into the policy's stream as they arise and come
back as the stream returns them (a served or continuously batched backend: as
each is done, so it stays busy; the hf backend on a CPU: a round at a time).

Output folder:
  trees/<id>.json   one tree per problem, for inspection
  paths.jsonl       training paths (AnnotatedPath), appended per problem
  done.jsonl        one line per finished problem, written last
  stats.json        counts, label histogram, time, skipped problems and why
  config.json       the resolved settings
  .lock             held while a run writes (mmprm.output)
A problem counts as done only once its done line is on disk. On a rerun
(same settings only), paths of unfinished problems are removed and those
problems redone; every random choice derives from (seed, problem, prefix),
so the result equals an uninterrupted run.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.mc import Annotation, per_step_mc
from mmprm.annotate.omegaprm import omegaprm
from mmprm.grading import Grader
from mmprm.io import Rejected, iter_json_lines, read_records, rehome_images, write_json_atomic
from mmprm.output import OutputLayout, ResumableOutput
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.types import AnnotatedPath, Problem

ALGORITHMS: dict[str, Callable[[Problem, Grader, AnnotateConfig], Annotation]] = {
    "omegaprm": omegaprm,
    "mc": per_step_mc,
}


def shard_of(problems: list[Problem], shard: tuple[int, int]) -> list[Problem]:
    """Problems of shard i of n: every n-th, by position in the input."""
    i, n = shard
    if not 0 <= i < n:
        raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
    return problems[i::n]


def tree_file(out_dir: Path, problem_id: str) -> Path:
    return out_dir / "trees" / (re.sub(r"[^A-Za-z0-9._-]", "_", problem_id) + ".json")


def annotate_file(policy: str, data: str | Path, out_dir: str | Path, cfg: AnnotateConfig, *,
                  grader: Grader | None = None, inflight: int = 16, shard: tuple[int, int] = (0, 1),
                  ray: str | None = None, shards: int = 2) -> dict:
    """`mmprm annotate`: the problems of `data` (bad lines counted and saved in
    `DIR/problems.rejected.jsonl`), the policy built from its spec, then `annotate`;
    with `ray` (auto, an address, or local) `shards` Ray tasks share the work."""
    import json
    import sys

    from mmprm.data import load_problems
    from mmprm.grading import RuleGrader
    from mmprm.io import RejectLog
    from mmprm.policy.load import load_policy

    print("annotate config: " + json.dumps(asdict(cfg)), file=sys.stderr)
    OutputLayout.folder(out_dir, "paths.jsonl")  # a file where the folder should be: say so before any work
    if ray:
        from mmprm.annotate.distributed import annotate_with_ray

        if grader is not None and not isinstance(grader, RuleGrader):
            raise ValueError("Ray shards grade with the rules; --judge is not available with --ray")
        return annotate_with_ray(policy, data, out_dir, cfg, shards=shards, address=ray, inflight=inflight)
    rejects = RejectLog(Path(out_dir) / "problems.jsonl", echo=lambda m: print(m, file=sys.stderr))
    problems = shard_of(load_problems(data, rejects=rejects), shard)
    rejects.close()
    model = load_policy(policy)
    try:
        return annotate(problems, model, grader or RuleGrader(), out_dir, cfg, inflight=inflight, inputs=[data],
                        rejected_inputs=rejects.count)
    finally:
        model.close()


def annotate(problems: list[Problem], policy: Policy, grader: Grader, out_dir: str | Path,
             cfg: AnnotateConfig, *, inflight: int = 16, inputs: Sequence[str | Path] = (),
             progress: bool = True, rejected_inputs: int = 0) -> dict:
    """Annotate `problems` into `out_dir`; returns the stats (also in stats.json).

    `out_dir` is a resumable output (mmprm.output) whose settings are `cfg`, the
    policy and the grader; `inputs` (the problems file) may not be written.
    `rejected_inputs` (bad input lines the caller already set aside) is counted
    among the skipped problems."""
    if inflight < 1:
        raise ValueError(f"inflight must be at least 1 problem, got {inflight}")
    out_dir = Path(out_dir)
    settings = {**asdict(cfg), "policy": policy.name, "grader": grader.name}
    output = ResumableOutput(OutputLayout.folder(out_dir, "paths.jsonl"), settings, key="id", inputs=inputs)
    output.open(p.id for p in problems)
    (out_dir / "trees").mkdir(parents=True, exist_ok=True)
    todo = [p for p in problems if p.id not in output.done]
    algorithm = ALGORITHMS[cfg.method]
    params = SamplingParams(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                            max_tokens=cfg.max_tokens, seed=cfg.seed)
    start = time.time()
    rollouts = labels = 0
    queue = list(reversed(todo))
    active: dict[str, tuple[Problem, Annotation]] = {}
    with output, tqdm(total=len(todo), desc=f"annotate ({cfg.method})", unit="prob", disable=not progress) as bar:

        def finish(problem: Problem, result: tuple) -> None:
            nonlocal labels
            tree, paths = result
            write_json_atomic(tree_file(out_dir, problem.id), tree.to_dict(), indent=None)
            for p in paths:
                p.images = rehome_images(p.images, out_dir, out_dir / "images", problem.id)
            labels += sum(len(p.labels) for p in paths)
            output.write(problem.id, paths, paths=len(paths), labels=sum(len(p.labels) for p in paths),
                         rollouts=tree.rollouts, label_rollouts=tree.label_rollouts, tokens=tree.tokens,
                         searches=tree.searches, skipped=tree.skipped)
            bar.update(1)

        def advance(problem: Problem, gen: Annotation, reply) -> None:
            try:
                query = gen.send(reply)
            except StopIteration as stop:
                del active[problem.id]
                finish(problem, stop.value)
                return
            stream.submit(problem.id, Request(problem, query.prefix, seed=query.seed), replace(params, n=query.k))

        stream = policy.stream()
        try:
            while queue or active:
                while queue and len(active) < inflight:
                    problem = queue.pop()
                    active[problem.id] = (problem, algorithm(problem, grader, cfg))
                    advance(*active[problem.id], None)
                for problem_id, continuations in stream.completed():
                    rollouts += len(continuations)
                    advance(*active[problem_id], continuations)
                elapsed = max(1e-9, time.time() - start)
                bar.set_postfix(rollouts_s=f"{rollouts / elapsed:.0f}", labels_s=f"{labels / elapsed:.1f}")
        finally:
            stream.close()
    return summarize(out_dir, [p.id for p in problems], time.time() - start, rejected_inputs)


def summarize(out_dir: Path, problem_ids: list[str], wall_seconds: float, rejected_inputs: int = 0) -> dict:
    """stats.json from what is on disk, so it is the same after a resume."""
    done = {}
    for _, rec in iter_json_lines(out_dir / "done.jsonl"):
        if isinstance(rec, dict):
            done[rec["id"]] = rec
    wanted = [done[i] for i in problem_ids if i in done]
    histogram = Counter()
    for _, rec in read_records(out_dir / "paths.jsonl", AnnotatedPath.from_dict):
        if not isinstance(rec, Rejected):
            for v in rec.labels:
                histogram["1.0" if v == 1.0 else f"{int(v * 10) / 10:.1f}"] += 1
    skipped = Counter(r["skipped"] for r in wanted if r["skipped"])
    if rejected_inputs:
        skipped["rejected input"] = rejected_inputs
    stats = {
        "problems": len(problem_ids) + rejected_inputs,
        "annotated": sum(1 for r in wanted if not r["skipped"]),
        "skipped": dict(skipped),
        "unfinished": len(problem_ids) - len(wanted),
        "paths": sum(r["paths"] for r in wanted),
        "labels": sum(r["labels"] for r in wanted),
        "rollouts": sum(r["rollouts"] for r in wanted),
        "label_rollouts": sum(r.get("label_rollouts", 0) for r in wanted),
        "generated_tokens": sum(r["tokens"] for r in wanted),
        "searches": sum(r["searches"] for r in wanted),
        "label_histogram": dict(sorted(histogram.items())),
        "wall_seconds": round(wall_seconds, 2),
    }
    write_json_atomic(out_dir / "stats.json", stats)
    return stats
