"""Run an annotation algorithm over many problems, crash-safe and batched.

Many problems are in flight at once: each is an algorithm generator waiting
on one MC query, and all waiting queries go to the policy in one call, so a
batched or served backend stays busy.

Output folder:
  trees/<id>.json   one tree per problem, for inspection
  paths.jsonl       training paths (AnnotatedPath), appended per problem
  done.jsonl        one line per finished problem, written last
  stats.json        counts, label histogram, time, skipped problems and why
  config.json       the resolved settings
A problem counts as done only once its done line is on disk. On a rerun,
paths of unfinished problems are removed and those problems redone; every
random choice derives from (seed, problem, prefix), so the result equals an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.mc import Annotation, per_step_mc
from mmprm.annotate.omegaprm import omegaprm
from mmprm.grading import Grader
from mmprm.io import JsonlAppender, Rejected, iter_json_lines, read_records, rehome_images, write_jsonl
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


def _check_same_settings(config_file: Path, cfg: AnnotateConfig) -> None:
    """A rerun resumes only with the settings that made the finished problems:
    otherwise one paths.jsonl would mix labels of two kinds."""
    if not config_file.exists():
        return
    saved = {**asdict(AnnotateConfig()), **json.loads(config_file.read_text())}
    changed = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in asdict(cfg).items() if saved.get(k) != v]
    if changed:
        raise ValueError(f"{config_file.parent} holds problems annotated with other settings ({'; '.join(changed)}); "
                         "rerun with the same settings to resume, or choose a new output folder")


def _resume(out_dir: Path) -> dict[str, dict]:
    """Finished problems, and paths.jsonl trimmed to exactly those problems."""
    done: dict[str, dict] = {}
    done_path = out_dir / "done.jsonl"
    if done_path.exists():
        for _, rec in iter_json_lines(done_path):
            if isinstance(rec, dict):
                done[rec["id"]] = rec
    paths_file = out_dir / "paths.jsonl"
    if paths_file.exists():
        rows = [r for _, r in read_records(paths_file, AnnotatedPath.from_dict)]
        keep = [r for r in rows if not isinstance(r, Rejected) and r.id in done]
        if len(keep) != len(rows):
            write_jsonl(paths_file, keep)
    return done


def annotate(problems: list[Problem], policy: Policy, grader: Grader, out_dir: str | Path,
             cfg: AnnotateConfig, *, inflight: int = 16, progress: bool = True,
             rejected_inputs: int = 0) -> dict:
    """Annotate `problems` into `out_dir`; returns the stats (also in stats.json).
    `rejected_inputs` (bad input lines the caller already set aside) is counted
    among the skipped problems."""
    out_dir = Path(out_dir)
    (out_dir / "trees").mkdir(parents=True, exist_ok=True)
    if (out_dir / "done.jsonl").exists() and (out_dir / "done.jsonl").stat().st_size:
        _check_same_settings(out_dir / "config.json", cfg)
    done = _resume(out_dir)
    (out_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    todo = [p for p in problems if p.id not in done]
    algorithm = ALGORITHMS[cfg.method]
    params = SamplingParams(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                            max_tokens=cfg.max_tokens, seed=cfg.seed)
    start = time.time()
    rollouts = labels = 0
    queue = list(reversed(todo))
    active: dict[str, tuple[Problem, Annotation, object]] = {}
    with JsonlAppender(out_dir / "paths.jsonl") as paths_out, \
            JsonlAppender(out_dir / "done.jsonl") as done_out, \
            tqdm(total=len(todo), desc=f"annotate ({cfg.method})", unit="prob", disable=not progress) as bar:

        def finish(problem: Problem, result: tuple) -> None:
            nonlocal labels
            tree, paths = result
            _write_atomic(tree_file(out_dir, problem.id), tree.to_dict())
            for p in paths:
                p.images = rehome_images(p.images, out_dir, out_dir / "images", problem.id)
                paths_out.write(p)
            labels += sum(len(p.labels) for p in paths)
            record = {"id": problem.id, "paths": len(paths), "labels": sum(len(p.labels) for p in paths),
                      "rollouts": tree.rollouts, "tokens": tree.tokens, "searches": tree.searches,
                      "skipped": tree.skipped}
            done_out.write(record)
            done[problem.id] = record
            bar.update(1)

        def advance(problem: Problem, gen: Annotation, reply) -> None:
            try:
                query = gen.send(reply)
            except StopIteration as stop:
                finish(problem, stop.value)
                return
            active[problem.id] = (problem, gen, query)

        while queue or active:
            while queue and len(active) < inflight:
                problem = queue.pop()
                advance(problem, algorithm(problem, grader, cfg), None)
            if not active:
                continue
            waiting = list(active.values())
            requests = [Request(p, q.prefix, seed=q.seed) for p, _, q in waiting]
            results = policy.sample_batch(requests, params)
            rollouts += sum(len(r) for r in results)
            active.clear()
            for (problem, gen, _), continuations in zip(waiting, results):
                advance(problem, gen, continuations)
            elapsed = max(1e-9, time.time() - start)
            bar.set_postfix(rollouts_s=f"{rollouts / elapsed:.0f}", labels_s=f"{labels / elapsed:.1f}")
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
        "generated_tokens": sum(r["tokens"] for r in wanted),
        "searches": sum(r["searches"] for r in wanted),
        "label_histogram": dict(sorted(histogram.items())),
        "wall_seconds": round(wall_seconds, 2),
    }
    _write_atomic(out_dir / "stats.json", stats)
    return stats


def _write_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
