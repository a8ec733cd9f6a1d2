"""docs/walkthrough.md's commands, run exactly as written (small sizes), so the
walkthrough cannot drift from the code."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def walkthrough_commands() -> list[list[str]]:
    text = (ROOT / "docs" / "walkthrough.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.startswith("mmprm ")]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_walkthrough_runs_as_written_and_leaves_what_it_says(tmp_path):
    for shipped in ("assets", "recipes"):
        (tmp_path / shipped).symlink_to(ROOT / shipped)
    commands = walkthrough_commands()
    assert [c[1] for c in commands] == ["synth", "synth", "annotate", "train", "generate", "score", "evaluate",
                                        "search", "export", "evaluate-steps"]
    for command in commands:
        proc = subprocess.run([sys.executable, "-m", "mmprm.cli", *command[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, (command, proc.stderr[-3000:])
    walk = tmp_path / "runs" / "walk"
    stats = json.loads((walk / "annotate" / "stats.json").read_text())
    paths = (walk / "annotate" / "paths.jsonl").read_text().splitlines()
    assert stats["annotated"] > 0 and stats["paths"] == len(paths) > 0
    prm_config = json.loads((walk / "prm" / "prm_config.json").read_text())
    assert prm_config["label_source"] == "first-error-vote, 0.1 masked by likelihood agreement"
    assert prm_config["oracle_labels"] is False
    samples = (walk / "samples.jsonl").read_text().splitlines()
    scored = [json.loads(line) for line in (walk / "scored.jsonl").read_text().splitlines()]
    assert len(samples) == 16 * 4 == len(scored) and all(len(s["step_scores"]) == len(s["steps"]) for s in scored)
    for name in ("samples.done.jsonl", "samples.config.json", "scored.done.jsonl", "scored.config.json",
                 "report/report.md", "report/accuracy.png", "beam/candidates.jsonl", "stepwise.jsonl"):
        assert (walk / name).is_file(), name
    report = json.loads((walk / "report" / "report.json").read_text())
    assert report["counts"]["problems"] == 16 and set(report["methods"]["majority"]) == {"1", "2", "4"}
    assert json.loads((walk / "beam" / "report.json").read_text())["problems"] == 4
    assert "f1" in json.loads((walk / "steps.json").read_text())
