"""Every bulk command, fed a file that mixes every kind of bad record with good ones: each good
record is processed exactly once, each bad one reported exactly once (file, line, reason)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
LIKELIHOOD = f"likelihood:{ROOT / 'assets' / 'tiny-policy-strong'}"
GOOD = ["g1", "g2", "g3"]


def _mmprm(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "mmprm.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _write_lines(path: Path, lines: list) -> None:
    """Lines as given: dicts as JSON, str as text, bytes as raw bytes."""
    with open(path, "wb") as f:
        for line in lines:
            raw = line if isinstance(line, bytes) else (json.dumps(line) if isinstance(line, dict) else line).encode()
            f.write(raw + b"\n")


def _rejected_lines(path: Path) -> list[int]:
    return sorted(json.loads(x)["line"] for x in path.read_text().splitlines())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    Image.new("RGB", (32, 32), "red").save(d / "ok.png")
    good = [{"id": pid, "question": "What is the sum of all the bars?", "answer": "7", "images": ["ok.png"]}
            for pid in GOOD]
    bad = ['{"id": "b1", "question": ',                                           # invalid JSON
           b'{"id": "b2", "question": "\xff\xfe", "answer": "1"}',                # invalid UTF-8
           {"id": "b3", "answer": "1"},                                           # missing question
           {"id": "b4", "question": "q", "answer": ["1", {"x": 2}]},              # mistyped answer
           {"id": "b5", "question": "  ", "answer": "1"},                         # empty question
           {"id": "g1", "question": "again", "answer": "1"},                      # duplicate id
           {"id": "b7", "question": "q", "answer": "1", "images": ["missing.png"]},
           {"id": "b8", "question": "q", "answer": "1", "images": ["../escape.png"]},
           {"id": "b9", "question": "q", "answer": "1", "images": ["/etc/passwd"]},
           {"id": "b10", "question": "x" * 20_001, "answer": "1"}]               # over the length limit
    lines = [good[0], *bad[:5], good[1], *bad[5:], good[2]]
    _write_lines(d / "problems.jsonl", lines)
    bad_lines = [i + 1 for i, line in enumerate(lines) if line not in good]
    return d, bad_lines


def test_generate_annotate_and_search(inputs):
    d, bad_lines = inputs
    _mmprm("generate", "--policy", "sim:default", "--data", "problems.jsonl", "--out", "s.jsonl", "--n", "2", cwd=d)
    rows = [json.loads(x) for x in (d / "s.jsonl").read_text().splitlines()]
    assert sorted(r["problem_id"] for r in rows) == sorted(GOOD * 2)
    assert _rejected_lines(d / "s.rejected.jsonl") == bad_lines
    for command, extra in [("annotate", ["--k", "2", "--max-searches", "1", "--rollout-budget", "8"]),
                           ("search", ["--prm", LIKELIHOOD, "--n", "2", "--width", "1", "--max-depth", "8"])]:
        _mmprm(command, "--policy", "sim:steps=2", "--data", "problems.jsonl", "--out", command, *extra, cwd=d)
        done = [json.loads(x)["id"] for x in (d / command / "done.jsonl").read_text().splitlines()]
        assert sorted(done) == GOOD, command
        assert _rejected_lines(d / command / "problems.rejected.jsonl") == bad_lines, command


def test_score_evaluate_grade_export_and_evaluate_steps(inputs):
    d, bad_lines = inputs
    good = [{"problem_id": pid, "steps": ["bar A is 3", "3 + 4 = 7"], "answer": "7", "correct": True} for pid in GOOD]
    bad = ['{"problem_id": ', {"steps": ["a"]}, {"problem_id": "g1", "steps": "a"},
           {"problem_id": "g1", "steps": ["a"], "step_scores": [float("nan")]},
           {"problem_id": "g1", "steps": ["a"] * 201}]
    _write_lines(d / "samples.jsonl", [good[0], *bad[:2], good[1], *bad[2:], good[2]])
    proc = _mmprm("score", "--prm", LIKELIHOOD, "--data", "problems.jsonl", "--samples", "samples.jsonl",
                  "--out", "scored.jsonl", cwd=d)
    assert "scored 3 solutions" in proc.stderr
    scored_rejects = [json.loads(x) for x in (d / "scored.rejected.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in scored_rejects if r["file"].endswith("samples.jsonl")) == [2, 3, 5, 6, 7]
    assert sorted(r["line"] for r in scored_rejects if r["file"].endswith("problems.jsonl")) == bad_lines

    _write_lines(d / "scored-mixed.jsonl", [*(d / "scored.jsonl").read_text().splitlines(), *bad])
    _mmprm("evaluate", "--scored", "scored-mixed.jsonl", "--n", "1", "--out", "report", cwd=d)
    report = json.loads((d / "report" / "report.json").read_text())
    assert report["counts"]["problems"] == 3 and report["counts"]["rejected"] == len(bad)

    _write_lines(d / "pairs.jsonl", [{"gold": "7", "pred": "7"}, '{"gold"', {"gold": ["7"], "pred": "7"},
                                     {"pred": "3"}, {"gold": "7", "pred": "8"}])
    _mmprm("grade", "--file", "pairs.jsonl", "--out", "verdicts.jsonl", cwd=d)
    assert [json.loads(x)["line"] for x in (d / "verdicts.jsonl").read_text().splitlines()] == [1, 5]
    assert _rejected_lines(d / "verdicts.rejected.jsonl") == [2, 3, 4]

    paths = [{"id": pid, "question": "q", "answer": "7", "steps": ["a", "b"], "labels": [1.0, 0.5],
              "images": ["ok.png"]} for pid in GOOD]
    bad_paths = ['{"id"', {"id": "x", "question": "q", "steps": ["a"], "labels": [2.0]},
                 {"id": "y", "question": "q", "steps": ["a"], "labels": [1.0], "images": ["gone.png"]}]
    _write_lines(d / "paths.jsonl", [paths[0], *bad_paths, paths[1], paths[2]])
    _mmprm("export", "--paths", "paths.jsonl", "--format", "stepwise", "--out", "stepwise.jsonl", cwd=d)
    assert sorted(json.loads(x)["id"] for x in (d / "stepwise.jsonl").read_text().splitlines()) == GOOD
    assert _rejected_lines(d / "stepwise.rejected.jsonl") == [2, 3, 4]
    _mmprm("evaluate-steps", "--prm", LIKELIHOOD, "--data", "paths.jsonl", "--out", "steps.json", cwd=d)
    steps = json.loads((d / "steps.json").read_text())
    assert steps["cases"] == 3 and steps["rejected"] == 3
    assert _rejected_lines(d / "steps.rejected.jsonl") == [2, 3, 4]
