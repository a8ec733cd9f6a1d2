"""`mmprm search`: run a search method over problems; accuracy beside tokens.

Problems go through in chunks; each chunk's candidates are appended to
`candidates.jsonl` (graded, with step scores), so a rerun skips finished
problems. `report.json` gives, per selection rule over each problem's
final candidates, the accuracy, and the mean generated tokens per problem,
so methods can be compared at equal compute.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mmprm.aggregate import AGGREGATIONS, aggregate, group_is_correct, to_weight
from mmprm.critic.base import Critic, load_critic
from mmprm.grading import Grader
from mmprm.io import Rejected, RejectLog, read_records, write_json_atomic
from mmprm.output import OutputLayout, ResumableOutput
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.prm.base import PRM
from mmprm.search.refine import refined_best_of_n
from mmprm.search.select import best_of_n, group_answers, vote
from mmprm.search.tree_search import SearchConfig, SearchResult, step_search
from mmprm.seeds import problem_seed
from mmprm.types import Problem, Solution


def best_of_n_search(problems: list[Problem], policy: Policy, prm: PRM, cfg: SearchConfig) -> list[SearchResult]:
    """Sample n whole solutions per problem and score them: the baseline the
    step-level methods must beat at equal tokens."""
    from mmprm.search.tree_search import Candidate

    params = SamplingParams(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                            max_tokens=cfg.max_step_tokens * cfg.max_depth, seed=cfg.seed)
    outputs = policy.sample_batch([Request(p, seed=problem_seed(cfg.seed, p.id)) for p in problems], params)
    results = []
    scores = prm.score_many([(p, [c.steps for c in conts]) for p, conts in zip(problems, outputs)])
    for problem, conts, problem_scores in zip(problems, outputs, scores):
        cands = [Candidate(c.steps, c.answer, list(s), c.finished) for c, s in zip(conts, problem_scores)]
        results.append(SearchResult(problem, cands, sum(c.completion_tokens for c in conts)))
    return results


SEARCH_METHODS = {"bon": best_of_n_search, "refined": refined_best_of_n, "beam": step_search, "dvts": step_search,
                  "greedy": step_search}


def search_file(policy: str, prm: str, data: str | Path, out_dir: str | Path, cfg: SearchConfig, *,
                grader: Grader | None = None, limit: int | None = None, critic: str | None = None) -> dict:
    """`mmprm search`: the first `limit` problems of `data`, the policy, PRM (and for
    Refined-BoN the critic) built from their specs, then `run_search`; returns the report."""
    from mmprm.data import load_problems
    from mmprm.grading import RuleGrader
    from mmprm.policy.load import load_policy
    from mmprm.prm.load import load_prm

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 problem, got {limit}")
    print("search config: " + json.dumps(asdict(cfg)), file=sys.stderr)
    OutputLayout.folder(out_dir, "candidates.jsonl")  # a file where the folder should be: say so before any work
    rejects = RejectLog(Path(out_dir) / "problems.jsonl", echo=tqdm.write)  # DIR/problems.rejected.jsonl
    problems = load_problems(data, rejects=rejects)[:limit]
    rejects.close()
    if (cfg.method == "refined") != (critic is not None):
        raise ValueError("--method refined needs --critic, and only it takes one")
    reviewer = load_critic(critic) if critic is not None else None
    model = load_policy(policy)
    try:
        scorer = load_prm(prm)
        try:
            return run_search(problems, model, scorer, grader or RuleGrader(), cfg, out_dir, inputs=[data],
                              critic=reviewer)
        finally:
            scorer.close()
    finally:
        model.close()
        if reviewer is not None:
            reviewer.close()


def run_search(problems: list[Problem], policy: Policy, prm: PRM, grader: Grader, cfg: SearchConfig,
               out_dir: str | Path, *, chunk: int = 8, inputs: Sequence[str | Path] = (),
               progress: bool = True, critic: Critic | None = None) -> dict:
    """Search every problem into `out_dir` (a resumable output: the policy, PRM,
    grader and search settings are its settings); returns the report."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 problem, got {chunk}")
    out_dir = Path(out_dir)
    search = SEARCH_METHODS[cfg.method]
    settings = {"command": "search", "policy": policy.name, "prm": prm.name, "grader": grader.name,
                "search": asdict(cfg)}
    if cfg.method == "refined":
        if critic is None:
            raise ValueError("Refined Best-of-N needs a critic")
        search = partial(refined_best_of_n, critic=critic)
        settings["critic"] = critic.name
    output = ResumableOutput(OutputLayout.folder(out_dir, "candidates.jsonl"), settings, inputs=inputs)
    start = time.time()
    with output.open(p.id for p in problems):
        todo = [p for p in problems if p.id not in output.done]
        with tqdm(total=len(todo), desc=f"search ({cfg.method})", unit="prob", disable=not progress) as bar:
            for i in range(0, len(todo), chunk):
                for result in search(todo[i : i + chunk], policy, prm, cfg):
                    graded = [Solution(result.problem.id, c.steps, c.answer,
                                       c.finished and grader.is_correct(result.problem, c.answer),
                                       c.step_scores or None, meta={"method": cfg.method, "finished": c.finished})
                              for c in result.candidates]
                    output.write(result.problem.id, graded, tokens=result.tokens, critic_tokens=result.critic_tokens,
                                 candidates=len(graded))
                bar.update(len(todo[i : i + chunk]))
        done = [output.done[p.id] for p in problems if p.id in output.done]
    report = search_report(output.layout.records, done, grader, cfg, bounded=prm.bounded)
    report["wall_seconds"] = round(time.time() - start, 2)
    write_json_atomic(out_dir / "report.json", report)
    return report


def search_report(candidates_file: Path, done: list[dict], grader: Grader, cfg: SearchConfig, *,
                  bounded: bool) -> dict:
    """Accuracy of each final selection rule, and tokens per problem."""
    by_problem: dict[str, list[Solution]] = {}
    for _, rec in read_records(candidates_file, Solution.from_dict):
        if not isinstance(rec, Rejected):
            by_problem.setdefault(rec.problem_id, []).append(rec)
    acc: dict[str, list[float]] = {}
    for record in done:
        cands = [c for c in by_problem.get(record["id"], []) if c.meta.get("finished")]
        correct = np.array([bool(c.correct) for c in cands])
        groups = group_answers([c.answer for c in cands], grader)
        n_groups = int(groups.max()) + 1 if len(groups) and (groups >= 0).any() else 0
        group_correct = np.array([group_is_correct(correct[groups == g]) for g in range(n_groups)], dtype=bool)
        for a in AGGREGATIONS:
            values = np.array([aggregate(c.step_scores or [], a, bounded=bounded) for c in cands])
            weights = np.array([to_weight(v, a, bounded=bounded) for v in values])
            acc.setdefault(f"{cfg.method}_{a}", []).append(
                float(best_of_n(values[None], correct[None])[0]) if len(cands) else 0.0)
            acc.setdefault(f"{cfg.method}_weighted_{a}", []).append(
                float(vote(groups[None], weights[None], group_correct)[0]) if len(cands) else 0.0)
        acc.setdefault(f"{cfg.method}_majority", []).append(
            float(vote(groups[None], np.ones((1, len(cands))), group_correct)[0]) if len(cands) else 0.0)
        acc.setdefault("any_correct", []).append(float(correct.any()) if len(cands) else 0.0)
    return {"method": cfg.method, "n": cfg.n, "problems": len(done),
            "accuracy": {k: float(np.mean(v)) for k, v in acc.items()},
            "per_problem": {"ids": [r["id"] for r in done], **acc},  # for paired comparisons between runs
            "tokens_per_problem": float(np.mean([r["tokens"] for r in done])) if done else 0.0,
            "critic_tokens_per_problem": float(np.mean([r.get("critic_tokens", 0) for r in done])) if done else 0.0,
            "notes": ["Ties are split evenly (expected accuracy under a random tie-break).",
                      "Unfinished beams (cut at max_depth) never count as right."]}
