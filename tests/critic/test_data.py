"""`mmprm critic build-data`: teacher critiques of annotated paths, kept where MC agrees."""

from __future__ import annotations

import json
from pathlib import Path

from mmprm.cli import main
from mmprm.critic.critique import parse
from mmprm.data import load_problems
from mmprm.data.synth import first_wrong_step, generate_synthetic
from mmprm.io import write_jsonl
from mmprm.types import AnnotatedPath


def annotated(tmp_path: Path) -> Path:
    """Reference and one-misread paths of 10 problems, with MC counts that see each error,
    except the last problem's wrong path, whose MC disagrees (a lucky rollout)."""
    generate_synthetic(10, 5, tmp_path / "data", split="train", families=["bartotal"], min_steps=3, max_steps=3)
    paths = []
    for i, p in enumerate(load_problems(tmp_path / "data" / "problems.jsonl")):
        ref = [s["text"] for s in p.meta["reference_steps"]]
        wrong = [ref[0], ref[1].rsplit(" ", 1)[0] + " 99", ref[2]]
        for steps, counts in ((ref, [[5, 8], [6, 8], [7, 8], [1, 1]]),
                              (wrong, [[5, 8], [6, 8], [1 if i == 9 else 0, 8], [0, 1]])):
            path = AnnotatedPath.of(p, steps, [1.0] * 3, mc_counts=counts)
            path.images = [str(Path(ref_).relative_to(tmp_path / "data")) for ref_ in p.images]
            paths.append(path)
    write_jsonl(tmp_path / "data" / "paths.jsonl", paths)
    return tmp_path / "data" / "paths.jsonl"


def test_build_data_keeps_critiques_that_agree_with_mc_with_their_images(tmp_path):
    paths = annotated(tmp_path)
    out = tmp_path / "critic" / "critiques.jsonl"
    assert main(["critic", "build-data", "--paths", str(paths), "--teacher", "sim:0", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    report = json.loads((tmp_path / "critic" / "critiques.jsonl.report.json").read_text())
    assert report["critiques"] == 20 and report["kept"] == 19 and report["teacher"] == "simulated-teacher:noise=0"
    problems = {p.id: p for p in load_problems(tmp_path / "data" / "problems.jsonl")}
    for r in records:
        assert (out.parent / r["images"][0]).is_file()
        critique = parse(r["critique"], len(r["steps"]), r["layout"]).critique
        assert critique.first_error == r["first_error"] == first_wrong_step(problems[r["id"].rsplit("-", 1)[0]],
                                                                              r["steps"])
    unfiltered = tmp_path / "critic" / "all.jsonl"
    assert main(["critic", "build-data", "--paths", str(paths), "--teacher", "sim:0", "--out", str(unfiltered),
                 "--no-filter"]) == 0
    assert len(unfiltered.read_text().splitlines()) == 20


def test_bad_teacher_specs_and_an_output_that_is_the_input_are_refused(tmp_path, capsys):
    paths = annotated(tmp_path)
    assert main(["critic", "build-data", "--paths", str(paths), "--teacher", "gpt4o", "--out",
                 str(tmp_path / "x.jsonl")]) == 2
    assert "is not sim:NOISE" in capsys.readouterr().err
    assert main(["critic", "build-data", "--paths", str(paths), "--teacher", "sim:0", "--out", str(paths)]) == 2
