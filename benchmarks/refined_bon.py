"""Refined Best-of-N against Best-of-N and the no-correction control, paired over the
same problems.

The default demo's held-out problems, its weak policy and its headline PRM (which
picks the final candidate, by the step minimum), N = 8, 96 tokens a solution. The
critic is the simulated teacher, `oracle` (the generator's ground truth: ORACLE, a
ceiling no user has) and `sim:0.2` (with noise: a stand-in), and any critic trained by
`mmprm critic train` (`--trained NAME=PATH`): it reviews, it picks (as GM-PRM does), and it
is compared with Best-of-8 picked by the same critic, with its no-correction control, and,
picked by the headline PRM, with Best-of-M at the same generated tokens (the policy's and
the critic's reviews). Each search resumes from `--out`, so a rerun only recomputes the
comparisons.

Run by hand, after a demo:
  .venv/bin/python benchmarks/refined_bon.py --run runs/demo-default --out runs/refined \
      --trained strong-sim0.2=runs/critic/strong-sim0.2
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mmprm.evaluate.report import paired_difference
from mmprm.search.runner import search_file
from mmprm.search.tree_search import SearchConfig

ROOT = Path(__file__).resolve().parents[1]
ORACLE_RUNS = {  # name: (method, critic, correction, picker, n); picker None: the demo's headline PRM
    "bon-": ("bon", None, True, None, 8),
    "refined-oracle": ("refined", "oracle", True, None, 8),
    "refined-oracle-nocorr": ("refined", "oracle", False, None, 8),
    "refined-sim_0_2": ("refined", "sim:0.2", True, None, 8),
}


def trained_runs(name: str, path: str) -> dict:
    """A trained critic's runs: picked by the critic itself (GM-PRM's rule, the mean P(correct)
    over steps, and the minimum), its control and Best-of-8 with the same critic; and
    Refined-BoN picked by the headline PRM, for the equal-token comparison."""
    picker = f"critic:{path}"
    return {f"bon-critic-{name}": ("bon", None, True, picker, 8),
            f"refined-{name}": ("refined", f"hf:{path}", True, picker, 8),
            f"refined-{name}-nocorr": ("refined", f"hf:{path}", False, picker, 8),
            f"refined-{name}-headline": ("refined", f"hf:{path}", True, None, 8)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/demo-default", help="a finished `mmprm demo` folder")
    ap.add_argument("--out", default="runs/refined")
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--trained", action="append", default=[], help="NAME=PATH of a critic from `mmprm critic train`")
    ap.add_argument("--no-oracle", action="store_true", help="skip the ORACLE and sim:0.2 runs")
    args = ap.parse_args()
    run, out = Path(args.run), Path(args.out)
    runs = {} if args.no_oracle else dict(ORACLE_RUNS)
    for spec in args.trained:
        name, _, path = spec.partition("=")
        runs.update(trained_runs(name, str(Path(path).resolve())))
    reports = {}

    def search(name: str, method: str, critic: str | None, correction: bool, picker: str | None, n: int) -> dict:
        cfg = SearchConfig(method=method, n=n, max_step_tokens=16, max_depth=6, temperature=1.0,
                           correction=correction)
        return search_file(f"hf:{os.path.relpath(ROOT / 'assets' / 'tiny-policy-weak')}",
                           picker or str(run / "prm-first-error-vote"),
                           run / "data" / "test" / "problems.jsonl", out / name, cfg, limit=args.problems,
                           critic=critic)

    for name, spec in runs.items():
        reports[name] = search(name, *spec)
    for spec in args.trained:  # Best-of-M at the refined run's generated tokens (policy + critic reviews)
        name = spec.partition("=")[0]
        r = reports[f"refined-{name}-headline"]
        per_solution = reports["bon-"]["tokens_per_problem"] / 8 if "bon-" in reports else 26.0
        m = max(8, round((r["tokens_per_problem"] + r["critic_tokens_per_problem"]) / per_solution))
        reports[f"bon-equal-budget-{name}"] = search(f"bon-equal-budget-{name}", "bon", None, True, None, m)
    rows = {}
    for name, r in reports.items():
        acc, m = r["accuracy"], r["method"]
        rows[name] = {"n": r["n"], "bon_min": round(acc[f"{m}_min"], 4), "bon_mean": round(acc[f"{m}_mean"], 4),
                      "majority": round(acc[f"{m}_majority"], 4), "pass@n (any right)": round(acc["any_correct"], 4),
                      "policy_tokens": round(r["tokens_per_problem"], 1),
                      "critic_tokens": round(r.get("critic_tokens_per_problem", 0.0), 1)}

    def paired(a: str, b: str, key: str = "min") -> dict:
        ra, rb = reports[a], reports[b]
        assert ra["per_problem"]["ids"] == rb["per_problem"]["ids"]
        d = paired_difference(ra["per_problem"][f"{ra['method']}_{key}"], rb["per_problem"][f"{rb['method']}_{key}"])
        return {"a": a, "b": b, "key": key, "difference": round(d["difference"], 4),
                "interval": [round(x, 4) for x in d["interval"]], "verdict": d["verdict"]}

    comparisons = []
    if not args.no_oracle:
        comparisons += [paired("refined-oracle", "bon-"), paired("refined-oracle", "refined-oracle-nocorr"),
                        paired("refined-sim_0_2", "bon-"), paired("refined-oracle", "bon-", "majority")]
    for spec in args.trained:
        name = spec.partition("=")[0]
        for key in ("min", "mean"):
            comparisons += [paired(f"refined-{name}", f"bon-critic-{name}", key),
                            paired(f"refined-{name}", f"refined-{name}-nocorr", key)]
        comparisons.append(paired(f"refined-{name}-headline", f"bon-equal-budget-{name}"))
        if "bon-" in reports:
            comparisons.append(paired(f"refined-{name}-headline", "bon-"))
    result = {"runs": rows, "comparisons": comparisons}
    out.mkdir(parents=True, exist_ok=True)
    (out / "refined_bon.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
