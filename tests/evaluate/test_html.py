"""The report page, opened from disk in a real headless Chromium."""

import re
import shutil
import subprocess

import pytest

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.runner import annotate, tree_file
from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.evaluate.html import render_page, results_table
from mmprm.grading import RuleGrader
from mmprm.policy.simulated import SimulatedPolicy
from mmprm.types import Solution

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _page(tmp_path):
    problems = load_problems(generate_synthetic(3, seed=4, out_dir=tmp_path / "data", split="test"))
    cands = {p.id: [Solution(p.id, ["bar A is 3", "3 + 4 = 7"], "7", True, [0.9, 0.8]),
                    Solution(p.id, ["bar A is 5", "5 + 4 = 9"], "9", False, [0.1, 0.7])] for p in problems}
    annotate(problems[:1], SimulatedPolicy(steps=4, error=0.2), RuleGrader(), tmp_path / "ann",
             AnnotateConfig(k=4, max_searches=3), progress=False)
    import json
    tree = json.loads(tree_file(tmp_path / "ann", problems[0].id).read_text())
    table = results_table({"majority": {"N=8": 0.41}, "bon_min": {"N=8": 0.55}}, ["N=8"])
    page = render_page("mmprm demo", table, problems, cands, tree=tree, tree_problem=problems[0])
    path = tmp_path / "report.html"
    path.write_text(page)
    return path, problems, tree


def test_page_is_self_contained(tmp_path):
    path, problems, tree = _page(tmp_path)
    text = path.read_text()
    assert text.count("data:image/png;base64,") == len(problems)
    assert "file:" not in text and "http" not in text  # nothing to fetch
    assert text.count('class="candidate right"') == len(problems)
    assert text.count("MC ") >= len([s for s in tree["states"] if s["mc"] is not None])


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium); "
                                             ".ci/run installs it")
def test_page_renders_in_headless_chromium(tmp_path):
    path, problems, _ = _page(tmp_path)
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=3000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert loaded and int(loaded.group(1)) == len(problems), "every embedded figure must decode"
    assert dom.count('class="step"') > 6 and "<table" in dom
