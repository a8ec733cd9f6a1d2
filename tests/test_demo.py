"""The README's main command, in its quick variant, end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "assets" / "tiny-policy-weak").is_dir(), reason="committed tiny policies missing")
def test_quick_demo_produces_the_report_and_resumes(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "mmprm.cli", "demo", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report" / "report.json").read_text())
    methods = report["methods"]
    for name in ("random", "majority", "pass@k", "prm-mc bon_min", "prm-first-error-vote bon_min", "prm-oracle bon_min",
                 "likelihood bon_min", "prm-first-error-vote weighted_min"):
        assert name in methods and "1" in methods[name], name
    assert methods["pass@k"]["1"] == pytest.approx(methods["random"]["1"])  # pass@1 is the mean correctness
    assert methods["pass@k"]["4"] > methods["random"]["4"]  # some problems have right and wrong samples
    assert set(report["beam_search"]) == {"prm-first-error-vote", "prm-oracle"}
    assert all(b["problems"] == 6 for b in report["beam_search"].values())  # the quick variant's beam problems
    # the report's claims are paired comparisons over the same problems, and say "beats" only when the interval does
    assert {(c["a"], c["b"]) for c in report["comparisons"]} == {
        ("prm-first-error-vote bon_min", "majority"), ("prm-first-error-vote bon_min", "prm-mc bon_min"),
        ("prm-oracle bon_min", "prm-first-error-vote bon_min"), ("likelihood bon_min", "prm-first-error-vote bon_min")}
    for c in report["comparisons"]:
        assert c["difference"] == pytest.approx(methods[c["a"]]["4"] - methods[c["b"]]["4"])
        low, high = c["interval"]
        assert c["verdict"] == ("beats" if low > 0 else "loses to" if high < 0 else "no difference shown against")
    ranking = report["ranking"]
    assert ranking["likelihood"]["problems_ranked"] > 0
    for scorer in ("prm-mc", "prm-first-error-vote", "prm-oracle", "likelihood"):
        assert 0.0 <= ranking[scorer]["within_problem_auroc_min"] <= 1.0
        assert 0.0 <= ranking[scorer]["first_error_f1"] <= 1.0
        assert ranking[scorer]["problems_ranked"] == ranking["likelihood"]["problems_ranked"]
    # the headline PRM is oracle-free, and every row says where its labels came from
    assert report["headline"] == "prm-first-error-vote"
    assert not report["label_sources"]["prm-first-error-vote"]["oracle"]
    assert report["label_sources"]["prm-oracle"]["oracle"]
    saved = json.loads((out / "prm-first-error-vote" / "prm_config.json").read_text())
    filtered = "first-error-vote, 0.1 masked by likelihood agreement"  # the headline's labels, filtered
    assert saved["label_source"] == filtered and saved["oracle_labels"] is False
    assert report["label_sources"]["prm-first-error-vote"]["source"] == filtered
    assert json.loads((out / "prm-mc" / "prm_config.json").read_text())["label_source"] == "mc"
    text = (out / "report" / "report.md").read_text()
    assert "Within-problem AUROC" in text
    assert "| ORACLE: oracle |" in text and f"| **prm-first-error-vote** | {filtered} |" in text
    assert (out / "report" / "accuracy.png").stat().st_size > 5000
    page = (out / "report" / "index.html").read_text()
    assert page.count('class="problem"') == 6 and "OmegaPRM annotation tree" in page
    # a rerun resumes: every stage finds its output and nothing is redone
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0
    assert "0 already done" not in again.stdout and "already holds a PRM" in again.stdout
    # --critic adds a generative critic on the same run: its row, labelled as the stand-in it is,
    # and its critiques beside the candidates' steps
    with_critic = subprocess.run(cmd + ["--critic"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert with_critic.returncode == 0, with_critic.stdout[-3000:] + with_critic.stderr[-3000:]
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["label_sources"]["critic"]["oracle"] and "simulated-teacher" in report["label_sources"]["critic"][
        "source"]
    assert 0.0 <= report["ranking"]["critic"]["within_problem_auroc_min"] <= 1.0
    assert json.loads((out / "critic" / "critic_config.json").read_text())["layout"] == "compact"
    assert 'class="critique"' in (out / "report" / "index.html").read_text()


# The default demo's published comparisons (README, docs/results.md, 2026-12-02, fourth session): Best-of-8
# by the step-minimum, paired over the same 300 held-out problems. The default demo is seeded per request and
# trains its PRMs on paths in problem-id order, so a rerun on this software and this kind of CPU reproduces
# them; the test holds it to the verdicts and the differences. Another CPU's float kernels train other PRMs
# from the same data (the previous figures did not reproduce on this session's machine: docs/results.md).
PUBLISHED = {
    ("prm-first-error-vote bon_min", "majority"): ("beats", 0.109),
    ("prm-first-error-vote bon_min", "prm-mc bon_min"): ("beats", 0.151),
    ("prm-oracle bon_min", "prm-first-error-vote bon_min"): ("beats", 0.047),
    ("likelihood bon_min", "prm-first-error-vote bon_min"): ("beats", 0.090),
}


@pytest.mark.demo
@pytest.mark.skipif(not (ROOT / "assets" / "tiny-policy-weak").is_dir(), reason="committed tiny policies missing")
@pytest.mark.timeout(3600)
def test_the_default_demo_reproduces_its_published_comparisons(tmp_path):
    """Opt in with `pytest -m demo` (about 10 minutes on 2 cores): too long for every run."""
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "mmprm.cli", "demo", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=3500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report" / "report.json").read_text())
    found = {(c["a"], c["b"]): c for c in report["comparisons"]}
    assert set(found) == set(PUBLISHED)
    for pair, (verdict, difference) in PUBLISHED.items():
        c = found[pair]
        low, high = c["interval"]
        assert c["verdict"] == verdict and (low > 0) == (verdict == "beats"), (pair, c)
        assert c["difference"] == pytest.approx(difference, abs=0.006), (pair, c)
