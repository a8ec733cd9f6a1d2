"""Mutation testing of the core algorithms: how many small deliberate bugs the tests catch.

Run by hand (never by the test suite), from a scratch copy so the working tree is never
touched:

    python benchmarks/mutation_survival.py [--per-module 12] [--seed 0]

For each core module, mutants are drawn (seeded) from simple operators over its code:
a comparison flipped (< and <=, > and >=, == and !=), a boolean operator swapped (and/or),
an arithmetic operator swapped (+ and -, * and /), a small integer constant moved by one.
Each mutant is written into a temporary copy of the repository and the module's own tests
run against it; a mutant survives when they all pass. Prints each survivor (file, line,
change) and the survival rate per module.
"""

from __future__ import annotations

import argparse
import ast
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# core module -> the tests that should catch a wrong label, score or selection there
CORE = {
    "src/mmprm/annotate/mc.py": ["tests/annotate/test_algorithms.py"],
    "src/mmprm/annotate/omegaprm.py": ["tests/annotate/test_algorithms.py"],
    "src/mmprm/annotate/tree.py": ["tests/annotate/test_algorithms.py"],
    "src/mmprm/labels/mc.py": ["tests/prm/test_labels.py"],
    "src/mmprm/labels/sources.py": ["tests/prm/test_labels.py"],
    "src/mmprm/aggregate.py": ["tests/evaluate/test_report.py", "tests/search/test_tree_search.py"],
    "src/mmprm/search/select.py": ["tests/evaluate/test_report.py", "tests/search/test_tree_search.py"],
    "src/mmprm/search/tree_search.py": ["tests/search/test_tree_search.py"],
    "src/mmprm/prm/metrics.py": ["tests/prm/test_metrics.py", "tests/evaluate/test_steps.py"],
}

_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq}
_BINARY = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


def mutation_sites(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """(node, description) for every place an operator can change."""
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _COMPARE:
            sites.append((node, f"{type(node.ops[0]).__name__} -> {_COMPARE[type(node.ops[0])].__name__}"))
        elif isinstance(node, ast.BoolOp):
            sites.append((node, f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}"))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            sites.append((node, f"{type(node.op).__name__} -> {_BINARY[type(node.op)].__name__}"))
        elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 8:
            sites.append((node, f"{node.value} -> {node.value + 1}"))
    return sites


def mutate(node: ast.AST) -> None:
    if isinstance(node, ast.Compare):
        node.ops[0] = _COMPARE[type(node.ops[0])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.BinOp):
        node.op = _BINARY[type(node.op)]()
    else:
        node.value = node.value + 1


def survives(copy: Path, module: str, source: str, tests: list[str]) -> bool:
    (copy / module).write_text(source)
    # a mutant that loops forever counts as caught once the per-test timeout stops it
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--timeout=60",
                           *tests],
                          cwd=copy, capture_output=True, text=True, timeout=900,
                          env={"PYTHONPATH": str(copy / "src"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                               "PATH": "/usr/bin:/bin", "HOME": str(copy)})
    return proc.returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-module", type=int, default=12, help="mutants drawn per module")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "__pycache__", "*.egg-info"))
        totals = {}
        for module, tests in CORE.items():
            original = (copy / module).read_text()
            count = len(mutation_sites(ast.parse(original)))
            chosen = sorted(rng.sample(range(count), min(args.per_module, count)))
            survived = []
            for index in chosen:
                tree = ast.parse(original)
                node, change = mutation_sites(tree)[index]
                mutate(node)
                if survives(copy, module, ast.unparse(tree), tests):
                    survived.append(f"{module}:{node.lineno} {change}")
            (copy / module).write_text(original)
            totals[module] = (len(survived), len(chosen), count)
            for line in survived:
                print("survived", line, flush=True)
            print(f"{module}: {len(survived)}/{len(chosen)} survived ({count} sites)", flush=True)
    killed = sum(t[1] - t[0] for t in totals.values())
    tried = sum(t[1] for t in totals.values())
    print(f"\nall core modules: {tried - killed}/{tried} survived, {killed / max(1, tried):.0%} killed")


if __name__ == "__main__":
    main()
