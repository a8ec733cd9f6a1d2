"""Input limits (mmprm.limits): a record past one is rejected, with the limit named; the rest go on."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from mmprm.data import load_problems
from mmprm.io import RejectLog
from mmprm.limits import RecordLimits, limits, set_limits
from mmprm.types import Solution


@pytest.fixture
def tight_limits():
    before = limits()
    set_limits(RecordLimits(max_question_chars=100, max_images=1, max_image_bytes=50_000, max_image_pixels=10_000,
                            max_solution_steps=3, max_step_chars=20))
    yield
    set_limits(before)


def _problem(pid, question="what is the sum?", images=()):
    return json.dumps({"id": pid, "question": question, "answer": "7", "images": list(images)})


def test_each_limit_rejects_its_record_and_keeps_the_others(tmp_path, tight_limits):
    Image.new("RGB", (50, 50)).save(tmp_path / "small.png")
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")  # 40,000 pixels
    (tmp_path / "heavy.bin").write_bytes(b"\0" * 60_000)
    rows = [_problem("ok", images=["small.png"]), _problem("long", question="x" * 101),
            _problem("many", images=["small.png", "small.png"]), _problem("pixels", images=["big.png"]),
            _problem("bytes", images=["heavy.bin"])]
    (tmp_path / "p.jsonl").write_text("\n".join(rows) + "\n")
    rejects = RejectLog(tmp_path / "out.jsonl")
    problems = load_problems(tmp_path / "p.jsonl", rejects=rejects)
    rejects.close()
    assert [p.id for p in problems] == ["ok"]
    reasons = [json.loads(x)["reason"] for x in (tmp_path / "out.rejected.jsonl").read_text().splitlines()]
    for reason, flag in zip(reasons, ["--max-question-chars", "--max-images", "--max-image-pixels",
                                      "--max-image-bytes"]):
        assert flag in reason, (reason, flag)
    with pytest.raises(ValueError, match="--max-solution-steps"):
        Solution.from_dict({"problem_id": "ok", "steps": ["a", "b", "c", "d"]})
    with pytest.raises(ValueError, match="--max-step-chars"):
        Solution.from_dict({"problem_id": "ok", "steps": ["a" * 21]})


def test_a_50_mb_question_is_one_rejected_line_not_a_crash(tmp_path):
    rows = [_problem("huge", question="why? " * 10_000_000), _problem("fine")]
    (tmp_path / "p.jsonl").write_text("\n".join(rows) + "\n")
    proc = subprocess.run([sys.executable, "-m", "mmprm.cli", "generate", "--policy", "sim:default", "--data",
                           "p.jsonl", "--out", "s.jsonl", "--n", "2"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "p.jsonl:1: the question's length is 50,000,000, over the limit of 20,000 (--max-question-chars)" \
        in proc.stderr
    assert {json.loads(x)["problem_id"] for x in (tmp_path / "s.jsonl").read_text().splitlines()} == {"fine"}
    assert "1 problems rejected" in proc.stderr
    raised = subprocess.run([sys.executable, "-m", "mmprm.cli", "generate", "--policy", "sim:default", "--data",
                             "p.jsonl", "--out", "t.jsonl", "--n", "2", "--max-question-chars", "60000000"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert raised.returncode == 0 and "0 problems rejected" in raised.stderr
