"""A tiny PRM learns: trained on local labels, it ranks correct solutions of held-out
problems above incorrect ones (fixed seed, no policy: corrupted reference solutions)."""

from __future__ import annotations

from mmprm.io import load_records
from mmprm.prm.labels import SyntheticJudge
from mmprm.prm.load import load_prm
from mmprm.prm.metrics import step_auroc, within_problem_auroc
from mmprm.prm.train import train_prm
from mmprm.types import Solution


def test_tiny_prm_on_local_labels_ranks_correct_solutions_first(synth, base, tmp_path, test_problems):
    log = train_prm(base, synth / "train" / "paths.jsonl", tmp_path / "prm", labels="local", lr=3e-3,
                    batch_size=8, max_steps=200, seed=0, log_every=50)
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
            labels.append(SyntheticJudge().judge(by_id[pid], sol.steps))
    within, n = within_problem_auroc(ids, flat, correct, how="min")
    pooled = step_auroc(flat, labels)
    print(f"held-out within-problem AUROC {within:.3f} over {n} problems; pooled step AUROC {pooled:.3f}")
    assert n == 60
    assert within > 0.65
    assert pooled > 0.65
