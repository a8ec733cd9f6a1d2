from pathlib import Path

import pytest

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.mc import per_step_mc
from mmprm.annotate.omegaprm import omegaprm
from mmprm.policy.simulated import SimulatedPolicy, true_first_error
from mmprm.annotate.tree import Rollout, Tree, filter_paths, rollout_paths, to_paths
from mmprm.grading import RuleGrader
from mmprm.policy.base import Request, SamplingParams
from mmprm.types import Problem

GRADER = RuleGrader()


def drive(gen, policy):
    """Run an annotation generator to the end against a policy."""
    reply = None
    while True:
        try:
            query = gen.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = policy.sample_batch([Request(PROBLEM, query.prefix, query.seed)],
                                    SamplingParams(n=query.k))[0]


PROBLEM = Problem("p", "q", "40", meta={"n_steps": 8})


def test_binary_search_finds_the_true_first_error():
    policy = SimulatedPolicy(error=0.08)
    tree, paths = drive(omegaprm(PROBLEM, GRADER, AnnotateConfig(k=16, max_searches=30)), policy)
    assert tree.searches > 10 and len(tree.first_errors) == tree.searches
    for found in tree.first_errors:
        assert found["first_error_step"] == true_first_error(found["steps"])
    for path in paths:  # a negative path's zero sits exactly on the first slip
        if path.labels[-1] == 0.0:
            assert true_first_error(path.steps) == len(path.steps) - 1
            assert all(v > 0 for v in path.labels[:-1])


def test_rollout_paths_are_the_sampled_solutions_with_exact_last_labels():
    cfg = AnnotateConfig(k=16, max_searches=30, paths="rollouts")
    tree, paths = drive(omegaprm(PROBLEM, GRADER, cfg), SimulatedPolicy(error=0.08))
    sampled = {tuple(s.steps + r.steps) for s in tree.states for r in s.rollouts if len(s.steps + r.steps) >= 2}
    assert {tuple(p.steps) for p in paths} == sampled
    value: dict[tuple, float] = {}
    for path in paths:  # a solution's value is its correctness; a prefix has one value in every path
        assert path.labels[-1] == (1.0 if true_first_error(path.steps) is None else 0.0)
        for j, v in enumerate(path.labels[:-1], 1):
            assert value.setdefault(tuple(path.steps[:j]), v) == v
    assert any(p.labels[-1] == 1.0 for p in paths) and any(p.labels[-1] == 0.0 for p in paths)
    with pytest.raises(ValueError, match="paths must be one of"):
        AnnotateConfig(paths="all")
    with pytest.raises(ValueError, match="per-step MC"):
        AnnotateConfig(method="mc", paths="rollouts")


def test_budget_is_never_overshot_by_more_than_one_estimate():
    cfg = AnnotateConfig(k=8, rollout_budget=60, max_searches=100)
    tree, _ = drive(omegaprm(PROBLEM, GRADER, cfg), SimulatedPolicy(error=0.15))
    assert 60 <= tree.rollouts < 60 + cfg.k


def test_search_limit_and_selection_visits():
    tree, _ = drive(omegaprm(PROBLEM, GRADER, AnnotateConfig(k=8, max_searches=5)), SimulatedPolicy(error=0.1))
    assert tree.searches == 5
    assert sum(s.visits for s in tree.states) == 5


@pytest.mark.parametrize("error, reason", [(0.0, "root MC is 1"), (1.0, "root MC is 0")])
def test_trivial_problems_are_skipped(error, reason):
    tree, paths = drive(omegaprm(PROBLEM, GRADER, AnnotateConfig(k=8)), SimulatedPolicy(error=error))
    assert tree.skipped == reason and paths == [] and tree.rollouts == 8


def test_per_step_mc_labels_stop_at_the_first_zero():
    tree, paths = drive(per_step_mc(PROBLEM, GRADER, AnnotateConfig(method="mc", k=16, num_solutions=6)),
                        SimulatedPolicy(error=0.08))
    assert paths
    for path in paths:
        first = true_first_error(path.steps)
        if first is None:
            assert all(v > 0 for v in path.labels) and path.labels[-1] == 1.0
        else:
            assert all(v > 0 for v in path.labels[:first]) and set(path.labels[first:]) == {0.0}
        assert path.meta["hard_labels"] == [v > 0 for v in path.labels]


def test_prefix_tree_reparents_and_paths_follow_it():
    tree = Tree("p")
    root = tree.insert([])
    deep = tree.insert(["a", "b", "c"])
    mid = tree.insert(["a"])
    assert deep.parent == mid.id and mid.parent == root.id and root.children == [mid.id]
    assert tree.insert(["a"]) is mid
    root.mc, mid.mc, deep.mc = 0.5, 0.5, 0.0
    [path] = to_paths(tree, Problem("p", "q", "1"))
    assert path.steps == ["a", "b", "c"] and path.labels == [0.5, 0.0, 0.0]


def test_rollout_paths_label_prefixes_with_the_pooled_mc_of_the_tree():
    tree = Tree("p")
    root = tree.insert([])
    root.rollouts = [Rollout(["a", "b"], "1", True, 4), Rollout(["a", "c"], "2", False, 4),
                     Rollout(["d", "e"], "3", False, 4), Rollout(["a", "b"], "1", True, 4)]
    mid = tree.insert(["a"])
    mid.rollouts = [Rollout(["c"], "2", False, 2), Rollout(["f"], "1", True, 2)]
    paths = rollout_paths(tree, Problem("p", "q", "1"))
    by_steps = {tuple(p.steps): p for p in paths}
    assert set(by_steps) == {("a", "b"), ("a", "c"), ("d", "e"), ("a", "f")}  # duplicates once
    # prefix "a": 5 sampled solutions pass through it (3 from the root, 2 from the state), 3 right
    assert by_steps[("a", "b")].labels == [0.6, 1.0]
    assert by_steps[("a", "c")].labels == [0.6, 0.0]
    assert by_steps[("d", "e")].labels == [0.0, 0.0]
    assert by_steps[("a", "f")].meta["end"] == "positive" and by_steps[("a", "c")].meta["end"] == "negative"
    kept = rollout_paths(tree, Problem("p", "q", "1"), limit=2, seed=3)
    assert len(kept) == 2 and all(by_steps[tuple(p.steps)].labels == p.labels for p in kept)
    assert [p.steps for p in kept] == [p.steps for p in rollout_paths(tree, Problem("p", "q", "1"), limit=2, seed=3)]
    assert {tuple(p.steps) for s in range(8) for p in rollout_paths(tree, Problem("p", "q", "1"), limit=2,
                                                                    seed=s)} == set(by_steps)
    tree.skipped = "root MC is 1"
    assert rollout_paths(tree, Problem("p", "q", "1")) == []


def test_filter_drops_short_and_duplicates_and_balances():
    pr = Problem("p", "q", "1")
    from mmprm.types import AnnotatedPath
    paths = [AnnotatedPath.of(pr, ["a"], [1.0]), AnnotatedPath.of(pr, ["a", "b"], [1.0, 0.0]),
             AnnotatedPath.of(pr, ["a", "b"], [1.0, 0.0]), AnnotatedPath.of(pr, ["a", "c"], [1.0, 1.0]),
             AnnotatedPath.of(pr, ["a", "d"], [1.0, 0.5]), AnnotatedPath.of(pr, ["a", "e"], [0.5, 0.0]),
             AnnotatedPath.of(pr, ["a", "f"], [0.5, 0.0])]
    kept = filter_paths(paths, min_steps=2)
    assert [p.steps[1] for p in kept] == ["b", "c", "d", "e", "f"]
    balanced = filter_paths(paths, min_steps=2, balance=True)
    assert sum(p.labels[-1] > 0 for p in balanced) == sum(p.labels[-1] == 0 for p in balanced) == 2


def test_recipe_overrides(tmp_path):
    cfg = AnnotateConfig.from_recipe(Path(__file__).parents[2] / "recipes" / "mmprm-annotate.yaml", seed=3)
    assert (cfg.k, cfg.length_scale, cfg.rollout_budget, cfg.max_searches, cfg.top_k, cfg.top_p, cfg.seed) == \
        (16, 2000, 1000, 200, 50, 0.9, 3)
    assert AnnotateConfig().k == 8 and AnnotateConfig().c_puct == 0.125
    (tmp_path / "bad.yaml").write_text("annotate:\n  kk: 3\n")
    with pytest.raises(ValueError, match="unknown annotate settings"):
        AnnotateConfig.from_recipe(tmp_path / "bad.yaml")
