import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate, shard_of
from mmprm.data import load_problems
from mmprm.grading import RuleGrader
from mmprm.io import load_records, write_jsonl
from mmprm.policy.simulated import SimulatedPolicy
from mmprm.prm.export import export_paths
from mmprm.types import AnnotatedPath, Problem

SIM = "sim:steps=6,error=0.12"


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("problems")
    from PIL import Image
    (d / "images").mkdir()
    Image.new("RGB", (56, 56), "white").save(d / "images" / "a.png")
    rows = [Problem(f"q{i}", f"question {i}", str(20 + i), images=["images/a.png"]) for i in range(24)]
    write_jsonl(d / "problems.jsonl", rows)
    return d / "problems.jsonl"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmprm.cli", "annotate", *args]


def _outputs(out: Path) -> tuple[list[str], dict[str, str]]:
    paths = sorted((out / "paths.jsonl").read_text().splitlines())
    trees = {f.name: f.read_text() for f in sorted((out / "trees").glob("*.json"))}
    return paths, trees


def test_sigkill_then_rerun_equals_an_uninterrupted_run(problems_file, tmp_path):
    common = ["--data", str(problems_file), "--k", "8", "--searches", "8", "--seed", "5", "--inflight", "4"]
    reference = tmp_path / "reference"
    subprocess.run(_cli("--policy", SIM, "--out", str(reference), *common), check=True, capture_output=True,
                   timeout=120)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli("--policy", SIM + ",delay=0.02", "--out", str(killed), *common),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    done = killed / "done.jsonl"
    while time.time() < deadline and (not done.exists() or len(done.read_text().splitlines()) < 6):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = len(done.read_text().splitlines())
    assert 6 <= finished_before < 24, "the kill must land mid-run"
    subprocess.run(_cli("--policy", SIM, "--out", str(killed), *common), check=True, capture_output=True,
                   timeout=120)
    assert _outputs(killed) == _outputs(reference)
    ids = [json.loads(x)["id"] for x in done.read_text().splitlines()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 24
    stats = json.loads((killed / "stats.json").read_text())
    reference_stats = json.loads((reference / "stats.json").read_text())
    for key in ("paths", "labels", "rollouts", "generated_tokens", "label_histogram", "skipped"):
        assert stats[key] == reference_stats[key]


def test_shards_partition_the_problems(problems_file, tmp_path):
    problems = load_problems(problems_file)
    cfg = AnnotateConfig(k=4, max_searches=4)
    whole = annotate(problems, SimulatedPolicy(), RuleGrader(), tmp_path / "whole", cfg, progress=False)
    parts = [annotate(shard_of(problems, (i, 3)), SimulatedPolicy(), RuleGrader(), tmp_path / f"s{i}", cfg,
                      progress=False) for i in range(3)]
    assert sum(p["problems"] for p in parts) == whole["problems"] == 24
    assert sum(p["labels"] for p in parts) == whole["labels"]
    assert whole["rollouts"] > 0 and sum(whole["label_histogram"].values()) == whole["labels"]
    with pytest.raises(ValueError, match="shard 3/3"):
        shard_of(problems, (3, 3))


def test_stats_count_skipped_problems(tmp_path):
    problems = [Problem(f"s{i}", "q", "7") for i in range(3)]
    stats = annotate(problems, SimulatedPolicy(error=0.0), RuleGrader(), tmp_path, AnnotateConfig(k=4),
                     progress=False, rejected_inputs=2)
    assert stats["skipped"] == {"root MC is 1": 3, "rejected input": 2} and stats["problems"] == 5


def test_every_export_format_loads_with_datasets(problems_file, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ann"
    annotate(load_problems(problems_file), SimulatedPolicy(), RuleGrader(), out, AnnotateConfig(k=8, max_searches=6),
             progress=False)
    for fmt in ("annotated", "stepwise", "internvl"):
        target = tmp_path / "exports" / f"{fmt}.jsonl"
        n = export_paths(out / "paths.jsonl", target, fmt)
        ds = datasets.load_dataset("json", data_files=str(target), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
        assert len(ds) == n > 0
        row = ds[0]
        if fmt == "stepwise":
            assert len(row["completions"]) == len(row["labels"]) == len(row["mc"])
            assert all(isinstance(v, bool) for v in row["labels"])
            image = row["images"][0]
        elif fmt == "internvl":
            human = row["conversations"][0]["value"]
            assert human.startswith("<image>\nQuestion: ") and human.count("<prm>") == len(row["labels"])
            assert json.loads(row["conversations"][1]["value"]) == row["labels"]
            image = row["image"]
        else:
            image = row["images"][0]
        assert (target.parent / image).is_file()  # paths stay relative to the file


def test_export_writes_a_named_label_source_and_cuts_unknown_steps(problems_file, tmp_path):
    out = tmp_path / "ann"
    annotate(load_problems(problems_file), SimulatedPolicy(), RuleGrader(), out,
             AnnotateConfig(k=8, max_searches=6, paths="rollouts"), progress=False)
    mc = load_records(out / "paths.jsonl", AnnotatedPath.from_dict)
    n = export_paths(out / "paths.jsonl", tmp_path / "fe.jsonl", "annotated", labels="first-error")
    relabelled = load_records(tmp_path / "fe.jsonl", AnnotatedPath.from_dict)
    assert 0 < n == len(relabelled) <= len(mc)
    assert all(p.meta["label_source"] == "first-error" and set(p.labels) <= {0.0, 1.0} for p in relabelled)
    assert all(0.0 not in p.labels[:-1] for p in relabelled)  # nothing is kept after a first error
    by_steps = {(p.id, tuple(p.steps)): p for p in mc}
    for p in relabelled:  # each is a prefix of an annotated path
        assert any(key[0] == p.id and key[1][: len(p.steps)] == tuple(p.steps) for key in by_steps)
    assert any(p.labels[-1] == 0.0 for p in relabelled) and any(p.labels[-1] == 1.0 for p in relabelled)


def test_ray_shards_merge_to_the_single_process_result(problems_file, tmp_path):
    pytest.importorskip("ray")
    import ray

    from mmprm.annotate.distributed import annotate_with_ray

    cfg = AnnotateConfig(k=4, max_searches=4)
    single = annotate(load_problems(problems_file), SimulatedPolicy(), RuleGrader(), tmp_path / "single", cfg,
                      progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        merged = annotate_with_ray("sim:default", problems_file, tmp_path / "ray", cfg, shards=3, address="auto")
    finally:
        ray.shutdown()
    for key in ("problems", "paths", "labels", "rollouts", "label_histogram"):
        assert merged[key] == single[key]
    assert sorted(json.loads(x)["steps"] for x in (tmp_path / "ray" / "paths.jsonl").read_text().splitlines()) == \
        sorted(json.loads(x)["steps"] for x in (tmp_path / "single" / "paths.jsonl").read_text().splitlines())
    assert len(list((tmp_path / "ray" / "trees").glob("*.json"))) == 24


def test_cli_rollout_paths_are_capped_per_problem_and_load(problems_file, tmp_path):
    from collections import Counter

    from mmprm.labels import load_labelled

    common = ["--policy", SIM, "--data", str(problems_file), "--k", "8", "--searches", "6"]
    subprocess.run(_cli(*common, "--out", str(tmp_path / "trav")), check=True, capture_output=True, timeout=120)
    subprocess.run(_cli(*common, "--out", str(tmp_path / "roll"), "--paths", "rollouts", "--max-rollout-paths", "5"),
                   check=True, capture_output=True, timeout=120)
    config = json.loads((tmp_path / "roll" / "config.json").read_text())
    assert config["paths"] == "rollouts" and config["max_rollout_paths"] == 5
    rows = [json.loads(x) for x in (tmp_path / "roll" / "paths.jsonl").read_text().splitlines()]
    per_problem = Counter(r["id"] for r in rows)
    assert max(per_problem.values()) == 5
    assert {r["labels"][-1] for r in rows} == {0.0, 1.0}  # whole solutions: right and wrong ones
    traversal = (tmp_path / "trav" / "paths.jsonl").read_text().splitlines()
    assert len(rows) > len(traversal)
    assert len(load_labelled(tmp_path / "roll" / "paths.jsonl", labels="mc")) == len(rows)  # images resolve
    bad = subprocess.run(_cli(*common, "--out", str(tmp_path / "bad"), "--method", "mc", "--paths", "rollouts"),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "per-step MC" in bad.stderr


def test_a_rerun_with_other_settings_refuses_to_mix_labels(tmp_path):
    problems = [Problem(f"m{i}", "q", str(20 + i)) for i in range(3)]
    cfg = AnnotateConfig(k=4, max_searches=2)
    annotate(problems, SimulatedPolicy(error=0.3), RuleGrader(), tmp_path, cfg, progress=False)
    before = (tmp_path / "paths.jsonl").read_text()
    with pytest.raises(ValueError, match=r"other settings \(paths: 'traversal' -> 'rollouts'\)"):
        annotate(problems, SimulatedPolicy(error=0.3), RuleGrader(), tmp_path,
                 AnnotateConfig(k=4, max_searches=2, paths="rollouts"), progress=False)
    assert (tmp_path / "paths.jsonl").read_text() == before
    annotate(problems, SimulatedPolicy(error=0.3), RuleGrader(), tmp_path, cfg, progress=False)  # same: resumes


def test_a_saved_tree_reads_back_whole(tmp_path):
    """The tree file is written by hand-made `to_dict`s: every field of every state and
    rollout must survive the round trip (a field added to the dataclasses but not there fails)."""
    from dataclasses import asdict

    from mmprm.annotate.tree import Tree

    problems = [Problem(f"t{i}", "q", "7") for i in range(3)]
    annotate(problems, SimulatedPolicy(error=0.3), RuleGrader(), tmp_path / "a",
             AnnotateConfig(k=4, max_searches=2, rollout_budget=40), progress=False)
    for f in sorted((tmp_path / "a" / "trees").glob("*.json")):
        saved = json.loads(f.read_text())
        tree = Tree.from_dict(saved)
        assert any(s.rollouts for s in tree.states)
        assert saved == {**saved, "states": [asdict(s) for s in tree.states]}
