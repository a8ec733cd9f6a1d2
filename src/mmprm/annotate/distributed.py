"""Annotation shards as Ray tasks, merged into one output folder.

Each task builds its own policy from the spec (a policy cannot be shipped
between machines), annotates its shard into `shards/<i>-of-<n>/` with the
same crash-safe runner, and the driver merges the shards' paths, trees and
done lines. Every machine must see the data file and the output folder
(a shared file system), as with any multi-machine Ray job.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate, shard_of, summarize
from mmprm.io import JsonlAppender, iter_json_lines, load_records
from mmprm.types import AnnotatedPath


def _run_shard(policy_spec: str, data: str, out_dir: str, cfg_dict: dict, shard: tuple[int, int],
               inflight: int) -> dict:
    from mmprm.data import load_problems
    from mmprm.grading import RuleGrader
    from mmprm.policy.load import load_policy

    problems = shard_of(load_problems(data), shard)
    policy = load_policy(policy_spec)
    try:
        return annotate(problems, policy, RuleGrader(), out_dir, AnnotateConfig(**cfg_dict),
                        inflight=inflight, progress=False)
    finally:
        policy.close()


def annotate_with_ray(policy_spec: str, data: str | Path, out_dir: str | Path, cfg: AnnotateConfig, *,
                      shards: int, address: str = "auto", inflight: int = 16,
                      num_cpus_per_task: float = 1) -> dict:
    import ray

    out_dir = Path(out_dir).resolve()
    data = str(Path(data).resolve())
    if address == "local":
        ray.init(include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    else:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(num_cpus=num_cpus_per_task)(_run_shard)
    shard_dirs = [out_dir / "shards" / f"{i}-of-{shards}" for i in range(shards)]
    refs = [task.remote(policy_spec, data, str(d), asdict(cfg), (i, shards), inflight)
            for i, d in enumerate(shard_dirs)]
    ray.get(refs)
    return merge_shards(out_dir, shard_dirs)


def merge_shards(out_dir: Path, shard_dirs: list[Path]) -> dict:
    """One paths.jsonl, done.jsonl and trees/ for the whole run."""
    (out_dir / "trees").mkdir(parents=True, exist_ok=True)
    for name in ("paths.jsonl", "done.jsonl"):
        (out_dir / name).unlink(missing_ok=True)
    ids: list[str] = []
    with JsonlAppender(out_dir / "paths.jsonl", fsync=False) as paths_out, \
            JsonlAppender(out_dir / "done.jsonl", fsync=False) as done_out:
        for d in shard_dirs:
            rel = d.relative_to(out_dir)
            for p in load_records(d / "paths.jsonl", AnnotatedPath.from_dict):
                p.images = [r if r.startswith("data:") else str(rel / r) for r in p.images]
                paths_out.write(p)
            for _, rec in iter_json_lines(d / "done.jsonl"):
                done_out.write(rec)
                ids.append(rec["id"])
            for tree in (d / "trees").glob("*.json"):
                shutil.copyfile(tree, out_dir / "trees" / tree.name)
    shutil.copyfile(shard_dirs[0] / "config.json", out_dir / "config.json")
    stats = summarize(out_dir, ids, sum(json.loads((d / "stats.json").read_text())["wall_seconds"]
                                        for d in shard_dirs))
    return stats
