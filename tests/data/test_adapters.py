import base64
import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from mmprm.data import convert, load_problems
from mmprm.io import load_records
from mmprm.types import AnnotatedPath


def _png(path=None) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (28, 28), (200, 10, 10)).save(buf, format="PNG")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_mathvision_real_file_via_cli(shared_data, tmp_path):
    src = shared_data / "mathvision-testmini" / "testmini.jsonl"
    out = tmp_path / "x.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mmprm.cli", "data", "convert", "--from", "mathvision",
                           str(src), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 304 records" in proc.stderr and "rejected 0" in proc.stderr
    problems = load_problems(out, strict=True)  # strict: every image must open
    assert len(problems) == 304
    assert sum(1 for p in problems if p.choices) == 304 - 114  # 114 free-form questions
    mc = next(p for p in problems if p.choices)
    assert mc.answer in "ABCDE" and len(mc.choices) >= 2
    # the output folder is self-contained: paths are relative to it
    first = json.loads(out.read_text().splitlines()[0])
    assert first["images"][0].startswith("x_images/")


def test_processbench_real_file(shared_data, tmp_path):
    summary = convert("processbench", shared_data / "processbench" / "gsm8k.json", tmp_path / "pb.jsonl",
                      progress=False)
    assert (summary.written, summary.rejected) == (400, 0)
    paths = load_records(tmp_path / "pb.jsonl", AnnotatedPath.from_dict)
    with_error = [p for p in paths if p.meta["first_error"] >= 0]
    assert len(with_error) == 207
    p = with_error[0]
    k = p.meta["first_error"]
    assert p.labels[:k] == [1.0] * k and set(p.labels[k:]) == {0.0}


def test_other_sources_from_fixtures(tmp_path):
    _png(tmp_path / "images" / "1.jpg")
    b64 = base64.b64encode(_png()).decode()
    mathvista = {"1": {"question": "What is x?", "image": "images/1.jpg", "choices": None,
                       "answer": "3.5", "question_type": "free_form", "precision": 1.0}}
    mathverse = [{"sample_index": "9", "problem_index": "2", "problem_version": "Vision Only",
                  "question": "Find the angle.\nChoices:\nA:30\nB:60\nC:90", "image": "images/1.jpg",
                  "answer": "B", "question_type": "multi-choice"}]
    olympiad = [{"id": 1606, "question": "Find <image_1> area.", "context": None, "final_answer": ["$12$"],
                 "image_1": b64, "unit": None, "answer_type": "Numerical"}]
    dynamath = [{"id": "d1", "question": "Which?\nChoices: \n(A) 1\n(B) 2", "image": "images/1.jpg",
                 "answer": "A", "answer_type": "multiple choice"}]
    mmk12 = [{"id": "k1", "question": "How many?", "correct_answer": "4", "image_path": "images/1.jpg"}]
    cases = {"mathvista": mathvista, "mathverse": mathverse, "olympiadbench": olympiad,
             "dynamath": dynamath, "mmk12": mmk12}
    for name, data in cases.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
        summary = convert(name, tmp_path / f"{name}.json", tmp_path / "out" / f"{name}.jsonl", progress=False)
        assert (summary.written, summary.rejected) == (1, 0), name
        [p] = load_problems(tmp_path / "out" / f"{name}.jsonl", strict=True)
        assert p.source is not None and p.images
        if name == "mathverse":
            assert p.question == "Find the angle." and p.choices == ["30", "60", "90"]
        if name == "dynamath":
            assert p.choices == ["1", "2"]
        if name == "olympiadbench":
            assert p.answer == "12" and p.images[0].startswith("data:image/png;base64,")


def test_bad_records_are_named_and_counted(tmp_path):
    _png(tmp_path / "data" / "ok.png")
    (tmp_path / "data" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "outside.png").write_bytes(_png())
    rows = [
        {"id": "1", "question": "q", "options": [], "answer": "1", "image": "ok.png"},
        {"id": "2", "question": "q", "options": [], "answer": "1", "image": "missing.png"},
        {"id": "3", "question": "q", "options": [], "answer": "1", "image": "broken.png"},
        {"id": "4", "question": "q", "options": [], "answer": "1", "image": "../outside.png"},
        {"id": "5", "question": "q", "options": [], "answer": "", "image": "ok.png"},
        {"id": "1", "question": "q", "options": [], "answer": "2", "image": "ok.png"},
    ]
    lines = [json.dumps(r).encode() for r in rows] + [b'{"id": "7", "question": "\xc3\x28"}']
    src = tmp_path / "data" / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    summary = convert("mathvision", src, out, progress=False, echo=lambda m: None)
    assert (summary.written, summary.rejected) == (1, 6)
    rejected = (tmp_path / "out.rejected.jsonl").read_text().splitlines()
    reasons = {r["line"]: r["reason"] for r in map(json.loads, rejected)}
    assert "not found" in reasons[2]
    assert "cannot be read" in reasons[3]
    assert "escapes the data folder" in reasons[4]
    assert reasons[5] == "empty 'answer'" or "missing field 'answer'" in reasons[5]
    assert "duplicate id '1' (first at line 1)" in reasons[6]
    assert reasons[7].startswith("invalid UTF-8")


def test_unknown_source_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown source 'nope'"):
        convert("nope", tmp_path / "x.json", tmp_path / "o.jsonl")
    with pytest.raises(FileNotFoundError, match="no such file"):
        convert("mathvista", tmp_path / "x.json", tmp_path / "o.jsonl")
