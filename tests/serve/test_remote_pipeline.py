"""The pipeline through `--prm http://...` gives what it gives with the local PRM:
search (beam, step by step), score then evaluate, evaluate-steps on the real
ProcessBench GSM8K file, and scoring with the real MathVision figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serving import variants

from loopback import serving
from mmprm.data import convert, load_problems
from mmprm.evaluate.report import EvaluateConfig, evaluate_file
from mmprm.evaluate.steps import evaluate_steps_file
from mmprm.grading import RuleGrader
from mmprm.prm.config import ScoreConfig
from mmprm.prm.score import StepPRM, score_with
from mmprm.search.runner import search_file
from mmprm.search.tree_search import SearchConfig
from mmprm.serve.prm_client import RemotePRM
from mmprm.serve.prm_server import create_prm_app
from mmprm.types import Solution

ROOT = Path(__file__).resolve().parents[2]
POLICY = f"hf:{ROOT / 'assets' / 'tiny-policy-strong'}"


@pytest.fixture(scope="module")
def remote(prm_dir):
    prm = StepPRM.from_pretrained(prm_dir)
    with serving(create_prm_app(prm)) as url:
        yield url
    prm.close()


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_scores(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x is None) == (y is None)
        if x is not None:
            assert len(x) == len(y) and all(abs(p - q) < 1e-5 for p, q in zip(x, y))


@pytest.mark.slow
def test_search_through_the_service_equals_search_with_the_local_prm(remote, prm_dir, data_dir, tmp_path):
    cfg = SearchConfig(method="beam", n=4, width=2, max_depth=4, max_step_tokens=24, seed=3)
    reports = {}
    for name, spec in (("local", str(prm_dir)), ("remote", remote)):
        reports[name] = search_file(POLICY, spec, data_dir / "problems.jsonl", tmp_path / name, cfg, limit=3)
    local, served = records(tmp_path / "local" / "candidates.jsonl"), records(tmp_path / "remote" / "candidates.jsonl")
    assert [r["steps"] for r in local] == [r["steps"] for r in served] and len(local) >= 3
    assert [r["correct"] for r in local] == [r["correct"] for r in served]
    same_scores([r["step_scores"] for r in local], [r["step_scores"] for r in served])
    assert reports["local"]["accuracy"] == reports["remote"]["accuracy"]


def test_score_then_evaluate_through_the_service_equals_local(remote, prm_dir, data_dir, problems, tmp_path):
    samples = tmp_path / "samples.jsonl"
    with samples.open("w") as f:
        for p in problems:
            for k, steps in enumerate(variants(p, 4)):
                f.write(json.dumps(Solution(p.id, steps, p.answer if k == 0 else "0", k == 0).to_dict()) + "\n")
    reports = {}
    for name, spec in (("local", str(prm_dir)), ("remote", remote)):
        score_with(spec, data_dir / "problems.jsonl", samples, tmp_path / f"{name}.jsonl", ScoreConfig())
        reports[name] = evaluate_file(tmp_path / f"{name}.jsonl", tmp_path / f"{name}-report",
                                      EvaluateConfig(n=[1, 2, 4]), RuleGrader())
    same_scores([r["step_scores"] for r in records(tmp_path / "local.jsonl")],
                [r["step_scores"] for r in records(tmp_path / "remote.jsonl")])
    assert reports["local"]["methods"] == reports["remote"]["methods"]


def test_evaluate_steps_on_real_processbench_through_the_service(remote, prm_dir, shared_data, tmp_path):
    convert("processbench", shared_data / "processbench" / "gsm8k.json", tmp_path / "pb.jsonl", progress=False)
    subset = tmp_path / "pb-25.jsonl"  # every 16th case: with and without errors
    subset.write_text("".join((tmp_path / "pb.jsonl").read_text().splitlines(keepends=True)[::16]))
    local = evaluate_steps_file(str(prm_dir), subset)
    served = evaluate_steps_file(remote, subset)
    assert local["cases"] == 25 and not any(v != v for v in local.values() if isinstance(v, float))  # no NaN
    assert json.dumps(served, sort_keys=True) == json.dumps(local, sort_keys=True)


def test_real_mathvision_figures_travel_as_data_uris_and_score_as_local(remote, prm_dir, shared_data, tmp_path):
    convert("mathvision", shared_data / "mathvision-testmini" / "testmini.jsonl", tmp_path / "mv.jsonl",
            progress=False, echo=lambda m: None)
    problems = [p for p in load_problems(tmp_path / "mv.jsonl") if p.images][:3]
    items = [(p, [["Read the figure.", "The answer is A."], ["Guess.", "The answer is B."]]) for p in problems]
    local = StepPRM.from_pretrained(prm_dir)
    client = RemotePRM(remote)
    want, got = local.score_many(items), client.score_many(items)
    client.close()
    local.close()
    same_scores([s for item in want for s in item], [s for item in got for s in item])
