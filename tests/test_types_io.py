import json
import os

import pytest

from mmprm.io import JsonlAppender, Rejected, RejectLog, load_records, read_records, resolve_image
from mmprm.types import AnnotatedPath, Problem, RecordError, Solution


def test_problem_round_trip_and_numeric_answer():
    p = Problem.from_dict({"id": 7, "question": "What is 2+3?", "answer": 5, "images": ["a.png"]})
    assert p.id == "7" and p.answer == "5"
    assert Problem.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("record, reason", [
    ({"question": "q", "answer": "1"}, "missing field 'id'"),
    ({"id": "1", "question": "q", "answer": "  "}, "empty 'answer'"),
    ({"id": "1", "question": "q", "answer": "1", "images": "a.png"}, "'images' must be list"),
    ({"id": "1", "question": "q", "answer": "1", "images": [3]}, "'images[0]' must be a string"),
    ({"id": True, "question": "q", "answer": "1"}, "'id' must be str or int"),
])
def test_problem_rejects_with_reason(record, reason):
    with pytest.raises(RecordError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        Problem.from_dict(record)


def test_solution_and_path_validation():
    s = Solution.from_dict({"problem_id": "1", "steps": ["a", "b"], "answer": "3", "step_scores": [0.1, 0.9]})
    assert s.step_scores == [0.1, 0.9]
    with pytest.raises(RecordError, match="2 entries for 1 steps"):
        Solution.from_dict({"problem_id": "1", "steps": ["a"], "step_scores": [0.1, 0.2]})
    with pytest.raises(RecordError, match=r"labels\[1\]"):
        AnnotatedPath.from_dict({"id": "1", "question": "q", "steps": ["a", "b"], "labels": [1, 1.5]})
    path = AnnotatedPath.of(Problem("1", "q", "4"), ["a"], [0.5])
    assert AnnotatedPath.from_dict(path.to_dict()) == path
    assert path.problem().answer == "4"


def test_reader_names_line_and_reason(tmp_path):
    f = tmp_path / "p.jsonl"
    good = json.dumps({"id": "1", "question": "q", "answer": "1"})
    f.write_bytes(good.encode() + b"\n\n{bad json\n" + b'{"id": "2", "question": "\xff"}\n'
                  + json.dumps({"id": "3", "question": "q"}).encode() + b"\n")
    out = list(read_records(f, Problem.from_dict))
    assert isinstance(out[0][1], Problem)
    rejected = [r for _, r in out if isinstance(r, Rejected)]
    assert [(r.line, r.reason.split(":")[0]) for r in rejected] == [
        (3, "invalid JSON"), (4, "invalid UTF-8 at byte 25"), (5, "missing field 'answer' (the reference answer)")]
    assert str(rejected[0]).startswith(f"{f}:3: ")
    with pytest.raises(RecordError, match=":3: invalid JSON"):
        load_records(f, Problem.from_dict)


def test_appender_drops_a_line_cut_by_a_kill(tmp_path):
    f = tmp_path / "out.jsonl"
    with JsonlAppender(f) as w:
        w.write({"a": 1})
    with open(f, "a") as raw:
        raw.write('{"a": 2, "cut')  # what a SIGKILL mid-write leaves
    with JsonlAppender(f) as w:
        w.write({"a": 3})
    assert [json.loads(x) for x in f.read_text().splitlines()] == [{"a": 1}, {"a": 3}]


def test_reject_log_writes_beside_output(tmp_path):
    log = RejectLog(tmp_path / "x.jsonl")
    log.add(Rejected("in.jsonl", 4, "empty 'answer'"))
    log.close()
    assert log.count == 1
    assert json.loads((tmp_path / "x.rejected.jsonl").read_text()) == {
        "file": "in.jsonl", "line": 4, "reason": "empty 'answer'"}


def test_image_paths_may_not_escape(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    with pytest.raises(RecordError, match="escapes the data folder"):
        resolve_image("../secret.png", tmp_path / "data")
    with pytest.raises(RecordError, match="is absolute"):
        resolve_image(os.fspath(tmp_path / "secret.png"), tmp_path / "data")
    with pytest.raises(RecordError, match="not found"):
        resolve_image("nope.png", tmp_path / "data")
    with pytest.raises(RecordError, match="not valid base64"):
        resolve_image("data:image/png;base64,@@@", tmp_path)
