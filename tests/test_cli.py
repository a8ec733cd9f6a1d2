import json
import subprocess
import sys


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
