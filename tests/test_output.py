"""The resumable output every record-writing command shares (mmprm.output):
nothing lost, nothing mixed, nothing written twice."""

import json
import os
import subprocess
import sys

import pytest

from mmprm.generate import generate
from mmprm.grading import RuleGrader
from mmprm.output import OutputError, OutputLayout, ResumableOutput
from mmprm.policy.base import SamplingParams
from mmprm.policy.simulated import SimulatedPolicy
from mmprm.types import Problem


def _problems(ids):
    return [Problem(f"p-{i}", "q", answer="7") for i in ids]


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_other_runs_records_are_never_touched(tmp_path):
    """Resuming with a different input must keep every record of problems outside it."""
    out = tmp_path / "samples.jsonl"
    generate(_problems(range(4)), SimulatedPolicy(), RuleGrader(), out, params=SamplingParams(n=3), progress=False)
    before = out.read_bytes()
    summary = generate(_problems([10, 11]), SimulatedPolicy(), RuleGrader(), out, params=SamplingParams(n=3),
                       progress=False)
    assert summary.solutions == 6 and out.read_bytes().startswith(before)
    assert sorted({r["problem_id"] for r in _lines(out)}) == ["p-0", "p-1", "p-10", "p-11", "p-2", "p-3"]


def test_changed_settings_are_refused_and_named(tmp_path):
    out = tmp_path / "samples.jsonl"
    generate(_problems(range(2)), SimulatedPolicy(), RuleGrader(), out, params=SamplingParams(n=3), progress=False)
    before = out.read_bytes()
    with pytest.raises(OutputError, match=r"sampling.temperature: 0.7 -> 1.0"):
        generate(_problems(range(3)), SimulatedPolicy(), RuleGrader(), out,
                 params=SamplingParams(n=3, temperature=1.0), progress=False)
    with pytest.raises(OutputError, match=r"policy: 'sim:steps=6,error=0.1.*error=0.5"):
        generate(_problems(range(3)), SimulatedPolicy(error=0.5), RuleGrader(), out, params=SamplingParams(n=3),
                 progress=False)
    assert out.read_bytes() == before


def test_a_file_this_command_did_not_write_is_refused(tmp_path):
    out = tmp_path / "samples.jsonl"
    out.write_text('{"problem_id": "p-0", "steps": [], "answer": "1", "correct": false}\n')
    with pytest.raises(OutputError, match="no samples.done.jsonl beside it"):
        generate(_problems(range(2)), SimulatedPolicy(), RuleGrader(), out, params=SamplingParams(n=3),
                 progress=False)
    assert out.read_text().count("\n") == 1


def test_an_input_is_never_the_output(tmp_path):
    data = tmp_path / "problems.jsonl"
    data.write_text("")
    with pytest.raises(OutputError, match="is also an input"):
        generate([], SimulatedPolicy(), RuleGrader(), data, params=SamplingParams(n=1), inputs=[data],
                 progress=False)


def test_bad_counts_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="n must be at least 1"):
        generate(_problems([0]), SimulatedPolicy(), RuleGrader(), tmp_path / "s.jsonl", params=SamplingParams(n=0),
                 progress=False)
    assert not (tmp_path / "s.jsonl").exists()


def test_torn_lines_and_unfinished_problems_are_redone_once(tmp_path):
    layout = OutputLayout.file(tmp_path / "out.jsonl")
    with ResumableOutput(layout, {"x": 1}).open(["a", "b"]) as out:
        out.write("a", [{"problem_id": "a", "v": 1}])
        out.write("b", [{"problem_id": "b", "v": 2}])
    # a kill: problem c's first record written, its second torn, no ledger line; the ledger's last line torn too
    with open(layout.records, "a") as f:
        f.write('{"problem_id": "c", "v": 3}\n{"problem_id": "c", "v"')
    with open(layout.ledger, "a") as f:
        f.write('{"id": "c"')
    with ResumableOutput(layout, {"x": 1}).open(["a", "b", "c"]) as out:
        assert set(out.done) == {"a", "b"}
        out.write("c", [{"problem_id": "c", "v": 3}, {"problem_id": "c", "v": 4}])
    assert [r["v"] for r in _lines(layout.records)] == [1, 2, 3, 4]
    assert [r["id"] for r in _lines(layout.ledger)] == ["a", "b", "c"]


def test_a_second_concurrent_run_is_stopped_and_a_dead_ones_lock_is_not(tmp_path):
    layout = OutputLayout.folder(tmp_path / "run", "paths.jsonl")
    with ResumableOutput(layout, {}).open([]):
        with pytest.raises(OutputError, match=rf"being written by process {os.getpid()}"):
            ResumableOutput(layout, {}).open([])
    # a process killed while holding the lock leaves the lock file behind, but not the lock
    code = ("import os, sys; from mmprm.output import OutputLayout, ResumableOutput; "
            f"ResumableOutput(OutputLayout.folder({str(tmp_path / 'run')!r}, 'paths.jsonl'), {{}}).open([]); "
            "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code], check=False)
    assert layout.lock.exists()
    with ResumableOutput(layout, {}).open([]):
        pass


def test_rejections_are_written_once_per_run(tmp_path):
    from mmprm.data import load_problems
    from mmprm.io import RejectLog

    data = tmp_path / "problems.jsonl"
    data.write_text('{"id": "a", "question": "q", "answer": "1"}\nnot json\n')
    for _ in range(2):
        rejects = RejectLog(tmp_path / "out.jsonl")
        load_problems(data, rejects=rejects)
        rejects.close()
    assert len((tmp_path / "out.rejected.jsonl").read_text().splitlines()) == 1


class _SlipCounter:
    """A scripted PRM: a step scores 0.1 when it is a simulated slip, else 0.9."""

    name = "slip-counter"
    bounded = True

    def score_many(self, items):
        return [[[0.1 if "slip" in s else 0.9 for s in steps] for steps in cands] for _, cands in items]

    def close(self):
        pass


def test_search_resumes_only_under_its_settings_and_survives_a_torn_ledger(tmp_path):
    from mmprm.search.runner import run_search
    from mmprm.search.tree_search import SearchConfig

    problems = _problems(range(4))
    policy = SimulatedPolicy(steps=3, error=0.3)
    cfg = SearchConfig(method="beam", n=4, width=2, max_depth=6)
    whole = run_search(problems, policy, _SlipCounter(), RuleGrader(), cfg, tmp_path / "whole", progress=False)
    out = tmp_path / "resumed"
    run_search(problems[:2], policy, _SlipCounter(), RuleGrader(), cfg, out, progress=False)
    with open(out / "done.jsonl", "a") as f:
        f.write('{"id": "p-2", "tok')  # a kill while the ledger line was being written
    with pytest.raises(OutputError, match=r"search.width: 2 -> 1"):
        run_search(problems, policy, _SlipCounter(), RuleGrader(), SearchConfig(method="beam", n=4, width=1),
                   out, progress=False)
    resumed = run_search(problems, policy, _SlipCounter(), RuleGrader(), cfg, out, progress=False)
    assert resumed["accuracy"] == whole["accuracy"] and resumed["problems"] == 4
    assert sorted(_lines(out / "candidates.jsonl"), key=json.dumps) == \
        sorted(_lines(tmp_path / "whole" / "candidates.jsonl"), key=json.dumps)
