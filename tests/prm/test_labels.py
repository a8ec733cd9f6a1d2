"""Label sources: MC-derived labels from an annotation's counts, the arithmetic
check, and the oracle (the synthetic generator's verdicts) kept apart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mmprm.grading import RuleGrader
from mmprm.labels import LABEL_SOURCES, get_source, label_paths, load_labelled, step_targets
from mmprm.labels.judges import ArithmeticJudge
from mmprm.labels.mc import advantage_labels, first_error_labels, survival_labels
from mmprm.labels.negatives import answer_negatives, changed_results
from mmprm.labels.sources import LabelledPath, prefix_from_local
from mmprm.prm.config import PRMTrainConfig
from mmprm.types import AnnotatedPath, Problem, RecordError

SRC = Path(__file__).resolve().parents[2] / "src" / "mmprm"


@pytest.mark.parametrize("step, verdict", [
    ("7 + 5 = 12", True), ("7 + 5 = 13", False), ("So 3 × 4 = 12 apples.", True), ("(3 + 4) * 2 = 14", True),
    ("10 / 3 = 3.33", True), ("10 / 3 = 3.34", False), ("12 - 15 = -3", True), ("2^3 = 8", True),
    ("6*9 = 54 = 50 + 4", True), ("6*9 = 54 = 50 + 5", False), ("5 / 0 = 1", False),
    ("x + 3 = 5", None), ("2x + 3 = 7", None), ("the triangle is isosceles", None), ("(so 3 + 4 = 7)", True),
])
def test_arithmetic_judge(step, verdict):
    assert ArithmeticJudge().check(step) is verdict


def test_first_error_places_the_step_where_the_prefix_stops_being_solvable():
    # root 4/8; step 1 keeps 5/8; step 2 drops to 0/8; the wrong answer after it
    counts = [[4, 8], [5, 8], [0, 8], [0, 1]]
    assert first_error_labels(counts, threshold=0.0) == [1.0, 0.0, None]
    assert first_error_labels([[4, 8], [5, 8], [6, 8], [1, 1]]) == [1.0, 1.0, 1.0]  # a right solution
    assert first_error_labels([[4, 8], [5, 8], [6, 8], [0, 1]]) == [1.0, 1.0, 0.0]  # the last step broke it


def test_first_error_does_not_trust_one_lucky_rollout():
    """A wrong reading that one rollout in eight still turns into the right answer:
    "MC > 0" calls it right, the share threshold does not."""
    counts = [[4, 8], [1, 8], [1, 8], [0, 1]]
    assert first_error_labels(counts, threshold=0.0) == [1.0, 1.0, 1.0][:2] + [0.0]
    assert first_error_labels(counts, threshold=0.5) == [0.0, None, None]


def test_first_error_leaves_an_unplaceable_error_unknown():
    # prefix 1 rests on one rollout: with min_rollouts 2 it is unknown, so the error is in step 1 or 2
    counts = [[4, 8], [0, 1], [0, 8], [0, 1]]
    assert first_error_labels(counts, min_rollouts=2) == [None, None, None]
    assert first_error_labels(counts, min_rollouts=1) == [0.0, None, None]
    # an unknown prefix followed by a solvable one is solvable too
    assert first_error_labels([[4, 8], None, [4, 8], [1, 1]]) == [1.0, 1.0, 1.0]
    assert first_error_labels([[0, 8], [0, 8], [0, 1]]) == [None, None]  # nothing is known to be solvable


def test_first_error_vote_fills_a_step_from_the_same_text_elsewhere_in_the_problem():
    problem = Problem("p", "q?", "9")
    right_a = AnnotatedPath.of(problem, ["A is 6", "B is 3", "6 + 3 = 9"], [0.5, 0.6, 1.0],
                               mc_counts=[[4, 8], [4, 8], [5, 8], [1, 1]])
    wrong_a = AnnotatedPath.of(problem, ["A is 7", "B is 3", "7 + 3 = 10"], [0.0, 0.0, 0.0],
                               mc_counts=[[4, 8], [0, 8], [0, 4], [0, 1]])
    other = AnnotatedPath.of(Problem("q", "q?", "9"), ["A is 7", "B is 3", "x"], [0.5, 0.5, 1.0],
                             mc_counts=[[4, 8], [4, 8], [0, 8], [0, 1]])
    own, voted = label_paths("first-error", [right_a, wrong_a, other]), label_paths(
        "first-error-vote", [right_a, wrong_a, other])
    assert own[1] == [0.0, None, None]
    assert voted[1] == [0.0, 1.0, None]  # "B is 3" was judged right on the problem's other path
    assert voted[0] == own[0] and voted[2] == own[2]  # another problem's labels never cross over
    with pytest.raises(ValueError, match="label_paths"):
        step_targets("first-error-vote", problem, right_a.steps, right_a)
    # what the MC leaves unknown, the arithmetic check fills where it can: "7 + 3 = 10" is right arithmetic
    assert label_paths("first-error-arithmetic", [right_a, wrong_a])[1] == [0.0, 1.0, 1.0]


def test_first_error_shared_takes_a_text_s_label_only_where_other_problems_agree():
    """A step after the first error is unknown on its own path; "4 + 5 = 9" was judged
    right in two other problems, so it takes that label. "B is 5" was judged right in one
    problem and wrong in another (it depends on the chart), so it stays unknown."""
    def path(pid, steps, counts):
        return AnnotatedPath.of(Problem(pid, "q?", "9"), steps, [0.0] * len(steps), mc_counts=counts)

    right = [[4, 8], [5, 8], [6, 8], [1, 1]]
    paths = [path("p1", ["A is 4", "B is 5", "4 + 5 = 9"], right),
             path("p2", ["A is 4", "B is 5", "4 + 5 = 9"], right),
             path("p3", ["A is 2", "B is 5", "2 + 5 = 7"], [[4, 8], [5, 8], [0, 8], [0, 1]]),  # B misread here
             path("p4", ["A is 3", "B is 5", "4 + 5 = 9"], [[4, 8], [0, 8], [0, 8], [0, 1]])]  # A misread
    shared = label_paths("first-error-shared", paths)
    assert label_paths("first-error-vote", paths)[3] == [0.0, None, None]
    assert shared[3] == [0.0, None, 1.0]
    assert shared[:3] == label_paths("first-error-vote", paths)[:3]  # known labels are never overwritten
    one_problem = label_paths("first-error-shared", paths[1:])  # "4 + 5 = 9" right in only one other problem
    assert one_problem[2] == [0.0, None, None]


def test_survival_and_advantage():
    counts = [[4, 8], [8, 8], [2, 8], [0, 8], [0, 1]]
    assert survival_labels(counts) == [1.0, 0.25, 0.0, None]
    assert advantage_labels(counts) == [0.75, 0.125, 0.375, None]
    assert survival_labels([[4, 8], [1, 1], [0, 1]], min_rollouts=2) == [None, None]


def annotated(counts, labels=None) -> AnnotatedPath:
    steps = [f"step {i}" for i in range(len(counts) - 1)]
    labels = labels or [c[0] / c[1] for c in counts[1:]]
    return AnnotatedPath.of(Problem("p", "q?", "1"), steps, labels, mc_counts=counts)


def test_sources_read_the_annotation_and_refuse_what_they_cannot_label():
    path = annotated([[4, 8], [5, 8], [0, 8], [0, 1]])
    problem = path.problem()
    assert step_targets("mc", problem, path.steps, path) == [5 / 8, 0.0, 0.0]
    assert step_targets("first-error", problem, path.steps, path) == [1.0, 0.0, None]
    with pytest.raises(ValueError, match="annotated paths"):
        step_targets("first-error", problem, path.steps)
    old = AnnotatedPath.of(Problem("p", "q?", "1"), path.steps, path.labels)
    with pytest.raises(RecordError, match="no meta.mc_counts"):
        step_targets("survival", problem, old.steps, old)
    with pytest.raises(RecordError, match="no ground truth"):
        step_targets("oracle", problem, path.steps, path)
    with pytest.raises(ValueError, match="unknown label source 'local'.*first-error"):
        get_source("local")


def test_only_the_oracle_sources_are_marked_oracle():
    assert {n for n, s in LABEL_SOURCES.items() if s.oracle} == {"oracle", "oracle-prefix"}
    assert all(s.summary.startswith("ORACLE") for s in LABEL_SOURCES.values() if s.oracle)


def test_the_training_path_reads_ground_truth_only_in_the_oracle():
    """Nothing that turns an annotation into training targets may read the
    generator's ground truth, except the oracle judge."""
    files = [SRC / "prm" / "train.py", SRC / "labels" / "sources.py", SRC / "labels" / "mc.py",
             SRC / "labels" / "negatives.py", SRC / "labels" / "agreement.py", SRC / "prm" / "likelihood.py",
             *sorted((SRC / "annotate").glob("*.py"))]
    pattern = re.compile(r"mmprm\.data\.synth|local_step_labels|first_wrong_step|\"objects\"|OracleJudge")
    hits = {f.name: pattern.findall(f.read_text()) for f in files}
    # sources.py names the oracle judge for the oracle sources and for evaluation (reference_verdicts)
    assert {name for name, found in hits.items() if found} == {"sources.py"}
    judges = (SRC / "labels" / "judges.py").read_text()
    oracle_class = judges[judges.index("class OracleJudge"):judges.index("class ArithmeticJudge")]
    assert judges.count("mmprm.data.synth") == oracle_class.count("mmprm.data.synth") == 1


def test_answer_negatives_change_the_stated_result_of_right_paths_only():
    problem = Problem("p", "What is A + B?", "10")
    right = LabelledPath(problem, ["bar A is 8", "bar B is 2", "8 + 2 = 10"], [1.0, 1.0, 1.0])
    made = answer_negatives([right], RuleGrader(), per_path=3)
    assert len(made) == 3
    for negative in made:
        assert negative.steps[:2] == right.steps[:2] and negative.targets == [1.0, 1.0, 0.0]
        result = negative.steps[2].rpartition("= ")[2]
        assert negative.steps[2].startswith("8 + 2 = ") and result in {"8", "9", "11", "12", "2"}
    # seeded by (seed, problem, steps) through sha256, so the same in every process
    assert [n.steps[2] for n in made] == ["8 + 2 = 12", "8 + 2 = 8", "8 + 2 = 9"]
    assert changed_results(problem, ["8 + 2 = 10."], RuleGrader(), per_path=2) == ["8 + 2 = 2.", "8 + 2 = 11."]
    assert changed_results(problem, ["A + B = 10, so the total is 10."], RuleGrader(), per_path=1)[0].startswith(
        "A + B = 10, so the total is ")  # the last number, not an earlier one
    unsure = LabelledPath(problem, right.steps, [1.0, None, 1.0])
    wrong_answer = LabelledPath(problem, ["bar A is 8", "bar B is 2", "8 + 2 = 11"], [1.0, 1.0, 1.0])
    no_number = LabelledPath(problem, ["bar A is 8", "bar B is 2", "add them"], [1.0, 1.0, 1.0])
    failed = LabelledPath(problem, right.steps, [1.0, 0.0, 0.0])
    assert answer_negatives([unsure, wrong_answer, no_number, failed], RuleGrader(), per_path=2) == []
    assert answer_negatives([right], RuleGrader(), per_path=0) == []
    with pytest.raises(ValueError, match="per_path"):
        answer_negatives([right], RuleGrader(), per_path=-1)
    with pytest.raises(ValueError, match="advantage"):  # its targets are not verdicts
        PRMTrainConfig(labels="advantage", answer_negatives=1)


def test_prefix_labels_chain_local_verdicts():
    assert prefix_from_local([1.0, 1.0, 0.0, 1.0]) == [1.0, 1.0, 0.0, 0.0]
    assert prefix_from_local([1.0, None, 1.0, 0.0, 1.0]) == [1.0, None, None, 0.0, 0.0]
    assert prefix_from_local([1.0, 0.0, None, 1.0]) == [1.0, 0.0, 0.0, 0.0]  # after a wrong step nothing is unknown


def test_annotated_paths_give_mc_or_oracle_labels(synth):
    data = synth / "train" / "paths-small.jsonl"
    first = json.loads(data.read_text().splitlines()[0])
    mc = load_labelled(data, labels="mc")
    oracle = load_labelled(data, labels="oracle")
    assert mc[0].targets == first["labels"] and mc[0].steps == first["steps"]
    assert [p.targets for p in oracle] == [p.targets for p in mc]  # the file holds the oracle's labels
    assert all(ref.startswith(str(synth)) for p in mc for ref in p.problem.images)  # absolute in memory


def test_samples_with_problems_take_the_judge_sources(synth):
    kwargs = {"samples": synth / "test" / "samples.jsonl", "problems": synth / "test" / "problems.jsonl"}
    local = load_labelled(**kwargs, labels="oracle")
    prefix = load_labelled(**kwargs, labels="oracle-prefix")
    assert len(local) == len(prefix) == 240
    wrong = next(p for p in local if 0.0 in p.targets[:-1])
    chained = next(p for p in prefix if p.steps == wrong.steps)
    assert chained.targets == prefix_from_local(wrong.targets) and chained.targets[-1] == 0.0
    with pytest.raises(ValueError, match="reads an annotation"):
        load_labelled(**kwargs, labels="first-error")


def test_duplicates_are_dropped_and_bad_arguments_named(synth):
    data = synth / "train" / "paths-small.jsonl"
    twice = synth / "train" / "paths-twice.jsonl"
    twice.write_text(data.read_text() * 2)
    assert len(load_labelled(twice)) == len(load_labelled(data))
    assert len(load_labelled(twice, dedupe=False)) == 2 * len(load_labelled(data))
    with pytest.raises(ValueError, match="either data"):
        load_labelled(data, samples=data)
    with pytest.raises(ValueError, match="--problems"):
        load_labelled(samples=data)


def test_an_estimate_counts_from_exactly_min_rollouts():
    from mmprm.labels.mc import _value

    counts = [[1, 2], [1, 2], [0, 1], [0, 1]]
    assert _value(counts, 1, min_rollouts=2) == 0.5  # two rollouts are enough when two are asked for
    assert _value(counts, 1, min_rollouts=3) is None
    assert _value(counts, 3, min_rollouts=3) == 0.0  # the last entry (the answer) is exact


def test_training_paths_do_not_depend_on_the_order_problems_finished_in(tmp_path):
    """The runner writes each problem's paths when it finishes: a PRM must learn the same whatever finished first."""
    def problem_paths(pid: str) -> list[AnnotatedPath]:
        return [AnnotatedPath.of(Problem(pid, "q?", "1"), [f"{pid} step {i}", "the same text"], [0.5, float(i)],
                                 mc_counts=[[4, 8], [4, 8], [i * 8, 8]]) for i in range(2)]

    blocks = {pid: problem_paths(pid) for pid in ("a", "b", "c")}
    for name, order in (("abc", "abc"), ("cab", "cab")):
        with (tmp_path / f"{name}.jsonl").open("w") as f:
            for pid in order:
                for p in blocks[pid]:
                    f.write(json.dumps(p.to_dict()) + "\n")
    first, other = (load_labelled(tmp_path / f"{n}.jsonl", labels="first-error-vote") for n in ("abc", "cab"))
    assert [(p.problem.id, p.steps, p.targets) for p in first] == [(p.problem.id, p.steps, p.targets) for p in other]
    assert [p.problem.id for p in first] == ["a", "a", "b", "b", "c", "c"]
