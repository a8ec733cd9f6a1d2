"""A tiny PRM learns: trained on local labels, it ranks correct solutions of held-out
problems above incorrect ones (fixed seeds): on corrupted reference solutions, and on
the committed tiny policy's own annotations and samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate
from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.generate import generate
from mmprm.grading import RuleGrader
from mmprm.io import load_records
from mmprm.labels.judges import OracleJudge
from mmprm.policy.base import SamplingParams
from mmprm.policy.hf import HFPolicy
from mmprm.prm.load import load_prm
from mmprm.prm.metrics import scored_summary, step_auroc, within_problem_auroc
from mmprm.prm.score import StepPRM, score_file
from mmprm.prm.train import PRMTrainConfig, train_prm
from mmprm.types import Solution


def test_tiny_prm_on_local_labels_ranks_correct_solutions_first(synth, base, tmp_path, test_problems):
    cfg = PRMTrainConfig(base=base, data=synth / "train" / "paths.jsonl", labels="oracle", lr=3e-3, batch_size=8,
                         max_steps=200, seed=0, log_every=50)
    log = train_prm(cfg, tmp_path / "prm")
    assert log["losses"][-1]["loss"] < log["losses"][0]["loss"]
    prm = load_prm(str(tmp_path / "prm"))
    by_id = {p.id: p for p in test_problems}
    samples = load_records(synth / "test" / "samples.jsonl", Solution.from_dict)
    groups: dict[str, list[Solution]] = {}
    for s in samples:
        groups.setdefault(s.problem_id, []).append(s)
    scores = prm.score_many([(by_id[pid], [s.steps for s in sols]) for pid, sols in groups.items()])
    ids, flat, correct, labels = [], [], [], []
    for (pid, sols), per_problem in zip(groups.items(), scores):
        for sol, step_scores in zip(sols, per_problem):
            ids.append(pid)
            flat.append(step_scores)
            correct.append(sol.correct)
            labels.append(OracleJudge().judge(by_id[pid], sol.steps))
    within, n = within_problem_auroc(ids, flat, correct, how="min")
    pooled = step_auroc(flat, labels)
    print(f"held-out within-problem AUROC {within:.3f} over {n} problems; pooled step AUROC {pooled:.3f}")
    assert n == 60
    assert within > 0.65
    assert pooled > 0.65


ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.mark.skipif(not (ASSETS / "tiny-policy-weak").is_dir(), reason="committed tiny policies missing")
@pytest.mark.timeout(900)  # ~3.5 minutes alone on 2 cores; more when other jobs share them
def test_prm_trained_on_the_tiny_policys_annotations_ranks_its_held_out_samples(tmp_path):
    """The pipeline's claim, end to end at a fixed seed: the weak tiny policy's OmegaPRM
    annotation (rollout paths) -> a PRM from the strong checkpoint on labels computed from
    the annotation's MC values alone (first-error-vote: no checker, no ground truth), those
    the strong checkpoint's likelihood disagrees with most masked -> on held-out problems it
    ranks the weak policy's right samples above its wrong ones."""
    policy = HFPolicy(str(ASSETS / "tiny-policy-weak"), batch_size=64)
    synth = dict(min_steps=3, max_steps=3, families=["bartotal"])
    try:
        generate_synthetic(400, 31, tmp_path / "train", split="train", **synth)
        generate_synthetic(100, 32, tmp_path / "test", split="test", **synth)
        train = load_problems(tmp_path / "train" / "problems.jsonl")
        test = load_problems(tmp_path / "test" / "problems.jsonl")
        cfg = AnnotateConfig(k=8, max_searches=6, rollout_budget=120, max_tokens=96, paths="rollouts")
        stats = annotate(train, policy, RuleGrader(), tmp_path / "annotate", cfg, progress=False)
        generate(test, policy, RuleGrader(), tmp_path / "samples.jsonl", progress=False,
                 params=SamplingParams(n=8, temperature=1.0, max_tokens=96, seed=0))
    finally:
        policy.close()
    assert stats["paths"] > 200
    train_prm(PRMTrainConfig(base=ASSETS / "tiny-policy-strong", data=tmp_path / "annotate" / "paths.jsonl",
                             labels="first-error-vote", lr=5e-4, batch_size=16, max_steps=1000, seed=0,
                             warmup_ratio=0.05, weight_decay=0.0, label_filter=str(ASSETS / "tiny-policy-strong"),
                             label_filter_share=0.1), tmp_path / "prm")
    assert json.loads((tmp_path / "prm" / "prm_config.json").read_text())["oracle_labels"] is False
    prm = StepPRM.from_pretrained(tmp_path / "prm")
    try:
        score_file(prm, tmp_path / "test" / "problems.jsonl", tmp_path / "samples.jsonl", tmp_path / "scored.jsonl",
                   progress=False)
    finally:
        prm.close()
    summary = scored_summary(tmp_path / "scored.jsonl", tmp_path / "test" / "problems.jsonl")
    print(stats["paths"], summary)
    assert summary["problems_ranked"] >= 50
    # measured 0.855 over 68 problems (first-error-vote with the likelihood-agreement filter, 0.1 masked);
    # 0.686 over 66 without the filter; the oracle-label PRM measured 0.817 here
    assert summary["within_problem_auroc_min"] > 0.75
