import json
import subprocess
import sys
from pathlib import Path


def _mmprm(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mmprm.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_grade_pair_prints_json():
    proc = _mmprm("grade", "--gold", "0.5", "--pred", r"\frac{1}{2}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"equal": True, "gold": "0.5", "pred": r"\frac{1}{2}", "method": "math-verify"}
    proc = _mmprm("grade", "--gold", "B", "--pred", "14", "--choices", '["10", "12", "14"]')
    assert json.loads(proc.stdout)["equal"] is False


def test_grade_file_in_order_with_rejections(tmp_path):
    rows = ['{"gold": "5", "pred": "5.0"}', '{"pred": "3"}', '{"gold": "x^2", "pred": "x*x"}',
            '{"gold": "7", "pred": null}']
    (tmp_path / "f.jsonl").write_text("\n".join(rows) + "\n")
    proc = _mmprm("grade", "--file", "f.jsonl", "--out", "r.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["line"], r["equal"]) for r in results] == [(1, True), (3, True), (4, False)]
    assert "f.jsonl:2: missing or empty 'gold'" in proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"graded": 3, "equal": 2, "rejected": 1}
    assert json.loads((tmp_path / "r.rejected.jsonl").read_text())["line"] == 2


def test_bad_arguments_give_a_clear_error(tmp_path):
    proc = _mmprm("data", "convert", "--from", "mathvista", str(tmp_path / "none.json"), "--out", "o.jsonl")
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def _problems_file(folder, n=3):
    rows = [json.dumps({"id": f"p-{i}", "question": "q", "answer": "7"}) for i in range(n)]
    (folder / "problems.jsonl").write_text("\n".join(rows) + "\n")
    return folder / "problems.jsonl"


def test_an_output_that_is_an_input_is_refused_by_every_command(tmp_path):
    data = _problems_file(tmp_path)
    before = data.read_text()
    runs = [("generate", "--policy", "sim:default", "--data", "problems.jsonl", "--out", "problems.jsonl"),
            ("score", "--prm", "x", "--data", "problems.jsonl", "--samples", "s.jsonl", "--out", "s.jsonl"),
            ("grade", "--file", "problems.jsonl", "--out", "problems.jsonl"),
            ("export", "--paths", "problems.jsonl", "--format", "annotated", "--out", "problems.jsonl"),
            ("evaluate-steps", "--prm", "x", "--data", "problems.jsonl", "--out", "problems.jsonl")]
    (tmp_path / "s.jsonl").write_text("")
    for args in runs:
        proc = _mmprm(*args, cwd=tmp_path)
        assert proc.returncode == 2 and "is also an input" in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert data.read_text() == before


def test_nonsense_counts_are_one_line_errors(tmp_path):
    _problems_file(tmp_path)
    runs = {("generate", "--n", "0"): "n must be at least 1",
            ("generate", "--limit", "-2"): "limit must be at least 1",
            ("search", "--method", "beam", "--width", "0", "--prm", "x"): "width must be at least 1",
            ("search", "--method", "beam", "--max-depth", "-1", "--prm", "x"): "max_depth must be at least 1"}
    for extra, message in runs.items():
        proc = _mmprm(extra[0], "--policy", "sim:default", "--data", "problems.jsonl", "--out", "o.jsonl",
                      *extra[1:], cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes(tmp_path):
    import signal
    import time

    _problems_file(tmp_path, n=40)
    args = [sys.executable, "-m", "mmprm.cli", "generate", "--policy", "sim:delay=0.2", "--data", "problems.jsonl",
            "--out", "s.jsonl", "--n", "2"]
    proc = subprocess.Popen([*args, "--limit", "40"], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal has it
    ledger = tmp_path / "s.done.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (ledger.exists() and ledger.read_text().count("\n") >= 8):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; rerun the same command to resume" in err
    assert "Traceback" not in err
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert sorted((r["problem_id"], r["meta"]["sample"]) for r in rows) == sorted(
        (f"p-{i}", k) for i in range(40) for k in range(2))


def test_user_mistakes_name_the_path_and_never_reach_a_hub(tmp_path):
    import shutil

    _problems_file(tmp_path)
    (tmp_path / "bad-prm").mkdir()
    (tmp_path / "bad-prm" / "prm_config.json").write_text("{bad")
    shutil.copytree(Path(__file__).resolve().parents[1] / "assets" / "tiny-policy-strong", tmp_path / "no-weights")
    for weights in (tmp_path / "no-weights").glob("*.safetensors"):
        weights.unlink()
    (tmp_path / "a-file").write_text("")
    runs = {("generate", "--policy", "hf:nowhere", "--data", "problems.jsonl", "--out", "s.jsonl"):
            "nowhere is not a model folder (no config.json there)",
            ("score", "--prm", "bad-prm", "--data", "problems.jsonl", "--samples", "problems.jsonl",
             "--out", "x.jsonl"): "bad-prm/prm_config.json: invalid JSON",
            ("score", "--prm", "likelihood:no-weights", "--data", "problems.jsonl", "--samples", "problems.jsonl",
             "--out", "x.jsonl"): "no-weights has no weights",
            ("annotate", "--policy", "sim:default", "--data", "problems.jsonl", "--out", "a-file"):
            "a-file is a file; the output must be a folder",
            ("generate", "--policy", "sim:default", "--data", "problems.jsonl", "--out", "a-file/s.jsonl"):
            "cannot create the output folder a-file"}
    for args, message in runs.items():
        proc = _mmprm(*args, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_more_nonsense_is_refused_or_rejected_not_written(tmp_path):
    (tmp_path / "scored.jsonl").write_text(json.dumps({"problem_id": "a", "steps": ["x"], "answer": "1",
                                                       "correct": True, "step_scores": [0.5]}) + "\n")
    proc = _mmprm("evaluate", "--scored", "scored.jsonl", "--out", "r", "--subsets", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "subsets >= 1" in proc.stderr and not (tmp_path / "r" / "report.json").exists()
    (tmp_path / "empty.jsonl").write_text("")
    proc = _mmprm("evaluate-steps", "--prm", "x", "--data", "empty.jsonl", "--out", "steps.json", cwd=tmp_path)
    assert proc.returncode == 2 and "no usable cases" in proc.stderr and not (tmp_path / "steps.json").exists()
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    rows = [{"id": "1", "question": "q", "options": [], "answer": ["8", "9"], "image": "a.png"},
            {"id": "2", "question": "q", "options": [], "answer": {"v": 8}, "image": "a.png"}]
    (tmp_path / "mv.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    proc = _mmprm("data", "convert", "--from", "mathvision", "mv.jsonl", "--out", "mv-out.jsonl", cwd=tmp_path)
    converted = [json.loads(x) for x in (tmp_path / "mv-out.jsonl").read_text().splitlines()]
    assert [c["answer"] for c in converted] == ["8, 9"]  # a multi-part answer, not the text "['8', '9']"
    assert "must be text, a number or a list of them" in (tmp_path / "mv-out.rejected.jsonl").read_text()


def test_a_second_run_into_the_same_output_is_stopped_while_the_first_writes(tmp_path):
    import time

    _problems_file(tmp_path, n=30)
    args = [sys.executable, "-m", "mmprm.cli", "annotate", "--policy", "sim:delay=0.05", "--data", "problems.jsonl",
            "--out", "ann", "--k", "2", "--max-searches", "2", "--rollout-budget", "8", "--inflight", "1"]
    first = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "ann" / "done.jsonl").exists():
        time.sleep(0.05)
    second = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    first.wait(timeout=300)
    assert second.returncode == 2 and f"is being written by process {first.pid}" in second.stderr
    done = [json.loads(x)["id"] for x in (tmp_path / "ann" / "done.jsonl").read_text().splitlines()]
    assert first.returncode == 0 and sorted(done) == sorted(f"p-{i}" for i in range(30))
