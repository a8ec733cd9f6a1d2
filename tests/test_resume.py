"""Kill a real process (SIGKILL, or Ctrl-C's SIGINT) part-way, run the same command again:
the output equals an uninterrupted run's. With the hf backend (the committed tiny policy), whose
samples depend on each request's seed alone, not on the batch a resumed run happens to form."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmprm.data.synth import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
WEAK = str(ROOT / "assets" / "tiny-policy-weak")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    generate_synthetic(6, 5, d / "data", split="test", families=["bartotal"], min_steps=3, max_steps=3)
    return d, f"likelihood:{ROOT / 'assets' / 'tiny-policy-strong'}"  # the scorer of score and search


def _command(kind: str, data: Path, out: Path, prm: str) -> list[str]:
    problems = str(data / "problems.jsonl")
    common = ["--data", problems, "--out", str(out)]
    if kind == "generate":
        return ["generate", "--policy", f"hf:{WEAK}", *common, "--n", "3", "--temperature", "1.0",
                "--max-tokens", "96", "--batch-problems", "2"]
    if kind == "annotate":
        return ["annotate", "--policy", f"hf:{WEAK}", *common, "--k", "4", "--max-searches", "2",
                "--rollout-budget", "24", "--paths", "rollouts", "--max-tokens", "96", "--inflight", "3"]
    if kind == "score":
        return ["score", "--prm", prm, "--data", problems, "--samples", str(data.parent / "samples-ref.jsonl"),
                "--out", str(out), "--problems-per-chunk", "1"]
    return ["search", "--method", "beam", "--policy", f"hf:{WEAK}", "--prm", prm, *common, "--n", "8",
            "--width", "2", "--max-depth", "6", "--max-step-tokens", "32", "--temperature", "1.0"]


def _ledger(kind: str, out: Path) -> Path:
    return out.with_name(out.stem + ".done.jsonl") if kind in ("generate", "score") else out / "done.jsonl"


def _records(kind: str, out: Path) -> list[str]:
    path = out if kind in ("generate", "score") else out / ("paths.jsonl" if kind == "annotate" else "candidates.jsonl")
    return sorted(path.read_text().splitlines())


def _run(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "mmprm.cli", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def default_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it. A test process may hold SIGINT ignored
    (something in the suite leaves it so on an xdist worker), and an ignored signal is
    inherited across exec, so the child would never see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(args: list[str], ledger: Path, *, at_lines: int, sig: int, after: float = 1.0) -> None:
    """Start the command, wait until its ledger has `at_lines` lines (0: until it is under way, then
    `after` seconds more), send `sig`."""
    proc = subprocess.Popen([sys.executable, "-m", "mmprm.cli", *args], stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        lines = ledger.read_text().count("\n") if ledger.exists() else -1
        if lines >= at_lines:
            break
        time.sleep(0.02)
    if at_lines == 0:
        time.sleep(after)  # inside the first problems' work
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, "the command finished before it could be interrupted; make the test's run longer"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted; rerun the same command to resume" in err
        assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("kind", ["generate", "annotate", "score", "search"])
def test_a_killed_or_interrupted_run_resumes_to_the_uninterrupted_output(work, kind):
    d, prm = work
    if kind in ("score",) and not (d / "samples-ref.jsonl").exists():
        _run(_command("generate", d / "data", d / "samples-ref.jsonl", prm))
    reference = d / f"{kind}-ref" / ("out.jsonl" if kind in ("generate", "score") else "")
    _run(_command(kind, d / "data", reference, prm))
    points = {  # (name, ledger lines to wait for, signal, seconds after): annotate, the longest job, early and late
        "generate": [("mid-int", 2, signal.SIGINT, 1.0)],
        "annotate": [("early-kill", 0, signal.SIGKILL, 1.0), ("late-kill", 4, signal.SIGKILL, 1.0)],
        "score": [("mid-kill", 1, signal.SIGKILL, 1.0)],
        # its one chunk of problems is written at once, and the search itself takes about 1.5 s alone
        "search": [("early-int", 0, signal.SIGINT, 0.3)],
    }[kind]
    for name, at_lines, sig, after in points:
        out = d / f"{kind}-{name}" / ("out.jsonl" if kind in ("generate", "score") else "")
        args = _command(kind, d / "data", out, prm)
        _interrupt(args, _ledger(kind, out), at_lines=at_lines, sig=sig, after=after)
        _run(args)
        assert _records(kind, out) == _records(kind, reference), (kind, name)
    done = [json.loads(x)["id"] for x in _ledger(kind, reference).read_text().splitlines()]
    assert len(done) == len(set(done)) == 6
