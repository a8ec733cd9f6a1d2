"""Refined Best-of-N against Best-of-N and the no-correction control, paired over the
same problems.

The default demo's held-out problems, its weak policy and its headline PRM (which
picks the final candidate, by the step minimum), N = 8, 96 tokens a solution. The
critic is the simulated teacher: `oracle` (the generator's ground truth: ORACLE, a
ceiling no user has) and `sim:0.2` (with noise: a stand-in for a trained critic or a
teacher model). No trained critic exists yet (issue 14). Each search resumes from
`--out`, so a rerun only recomputes the comparisons.

Run by hand, after a demo:
  .venv/bin/python benchmarks/refined_bon.py --run runs/demo-default --out runs/refined
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmprm.evaluate.report import paired_difference
from mmprm.search.runner import search_file
from mmprm.search.tree_search import SearchConfig

ROOT = Path(__file__).resolve().parents[1]
RUNS = {  # name: (method, critic, correction)
    "bon-": ("bon", None, True),
    "refined-oracle": ("refined", "oracle", True),
    "refined-oracle-nocorr": ("refined", "oracle", False),
    "refined-sim_0_2": ("refined", "sim:0.2", True),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/demo-default", help="a finished `mmprm demo` folder")
    ap.add_argument("--out", default="runs/refined")
    ap.add_argument("--problems", type=int, default=300)
    args = ap.parse_args()
    run, out = Path(args.run), Path(args.out)
    reports = {}
    for name, (method, critic, correction) in RUNS.items():
        cfg = SearchConfig(method=method, n=8, max_step_tokens=16, max_depth=6, temperature=1.0,
                           correction=correction)
        reports[name] = search_file(f"hf:{ROOT / 'assets' / 'tiny-policy-weak'}", str(run / "prm-first-error-vote"),
                                    run / "data" / "test" / "problems.jsonl", out / name, cfg,
                                    limit=args.problems, critic=critic)
    rows = {}
    for name, r in reports.items():
        acc, m = r["accuracy"], r["method"]
        rows[name] = {"bon_min": round(acc[f"{m}_min"], 4), "majority": round(acc[f"{m}_majority"], 4),
                      "pass@8 (any right)": round(acc["any_correct"], 4), "tokens": round(r["tokens_per_problem"], 1)}

    def paired(a: str, b: str, key: str = "min") -> dict:
        ra, rb = reports[a], reports[b]
        assert ra["per_problem"]["ids"] == rb["per_problem"]["ids"]
        d = paired_difference(ra["per_problem"][f"{ra['method']}_{key}"], rb["per_problem"][f"{rb['method']}_{key}"])
        return {"a": a, "b": b, "difference": round(d["difference"], 4),
                "interval": [round(x, 4) for x in d["interval"]], "verdict": d["verdict"]}

    comparisons = [paired("refined-oracle", "bon-"), paired("refined-oracle", "refined-oracle-nocorr"),
                   paired("refined-sim_0_2", "bon-"), paired("refined-oracle", "bon-", "majority")]
    print(json.dumps({"runs": rows, "comparisons": comparisons}, indent=1))


if __name__ == "__main__":
    main()
