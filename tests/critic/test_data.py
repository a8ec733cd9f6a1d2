"""`mmprm critic build-data`: teacher critiques of annotated paths, kept where MC agrees."""

from __future__ import annotations

import json

from annotated import annotated

from mmprm.cli import main
from mmprm.critic.critique import parse
from mmprm.data import load_problems
from mmprm.data.synth import first_wrong_step


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


def test_answer_negatives_give_the_teacher_right_paths_with_a_wrong_final_result(tmp_path):
    paths = annotated(tmp_path)
    out = tmp_path / "critic" / "critiques.jsonl"
    assert main(["critic", "build-data", "--paths", str(paths), "--teacher", "sim:0", "--out", str(out),
                 "--answer-negatives", "2"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    report = json.loads((tmp_path / "critic" / "critiques.jsonl.report.json").read_text())
    assert report["answer_negatives"] == 2 and report["critiques"] == 20 + 2 * 10 and report["kept"] == 19 + 20
    problems = {p.id: p for p in load_problems(tmp_path / "data" / "problems.jsonl")}
    negatives = [r for r in records if "-negative" in r["id"]]
    assert len(negatives) == 20
    for r in negatives:
        problem = problems[r["id"].split("-negative")[0].rsplit("-", 1)[0]]
        reference = [s["text"] for s in problem.meta["reference_steps"]]
        assert r["steps"][:2] == reference[:2] and r["steps"][2] != reference[2]
        assert r["first_error"] == first_wrong_step(problem, r["steps"]) == 2  # the teacher and MC agree
