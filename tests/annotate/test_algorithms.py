from pathlib import Path

import pytest
from driving import drive as drive_for

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.mc import per_step_mc
from mmprm.annotate.omegaprm import omegaprm
from mmprm.annotate.tree import Rollout, Tree, draw_paths, filter_paths, rollout_paths, to_paths
from mmprm.grading import RuleGrader
from mmprm.policy.simulated import SimulatedPolicy, true_first_error
from mmprm.types import Problem

GRADER = RuleGrader()


def drive(gen, policy):
    """Run an annotation generator to the end against a policy, for PROBLEM."""
    return drive_for(gen, policy, PROBLEM)


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
    with pytest.raises(ValueError, match="needs paths rollouts or both"):
        AnnotateConfig(max_rollout_paths=4)


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


def test_rollout_paths_label_states_by_their_mc_and_other_prefixes_by_rollouts_from_above():
    tree = Tree("p")
    root = tree.insert([])
    root.mc = 0.5
    root.rollouts = [Rollout(["a", "b", "x"], "1", True, 6), Rollout(["a", "b", "y"], "2", False, 6),
                     Rollout(["a", "c", "z"], "3", False, 6), Rollout(["d", "e", "f"], "4", False, 6)]
    a = tree.insert(["a"])
    a.mc = 0.25
    a.rollouts = [Rollout(["b", "x"], "1", True, 4), Rollout(["c", "q"], "5", False, 4), Rollout([], None, False, 0)]
    ac = tree.insert(["a", "c"])
    ac.mc = 0.0
    ac.rollouts = [Rollout(["z"], "3", False, 2), Rollout(["w"], "6", False, 2)]
    de = tree.insert(["d", "e"])  # a deeper state: its rollouts pass through "d" but are not samples from it
    de.mc = 1.0
    de.rollouts = [Rollout(["g"], "1", True, 2), Rollout(["h"], "1", True, 2)]
    problem = Problem("p", "q", "1")
    by_steps = {tuple(p.steps): p.labels for p in rollout_paths(tree, problem)}
    assert by_steps == {  # duplicates once, the empty rollout left out
        ("a", "b", "x"): [0.25, 2 / 3, 1.0],  # ("a", "b") is no state: 2 of the 3 rollouts from above reach "1"
        ("a", "b", "y"): [0.25, 2 / 3, 0.0],
        ("a", "c", "z"): [0.25, 0.0, 0.0],
        ("a", "c", "q"): [0.25, 0.0, 0.0],
        ("a", "c", "w"): [0.25, 0.0, 0.0],
        ("d", "e", "f"): [0.0, 1.0, 0.0],    # "d": only the root's rollout counts, not the state's below it
        ("d", "e", "g"): [0.0, 1.0, 1.0],
        ("d", "e", "h"): [0.0, 1.0, 1.0],
    }
    paths = rollout_paths(tree, problem)
    # [right, total] behind each prefix, root first: a state pools its own rollouts with those from above
    counts = {tuple(p.steps): p.meta["mc_counts"] for p in paths}
    assert counts[("a", "b", "x")] == [[1, 4], [2, 6], [2, 3], [1, 1]]
    assert counts[("a", "c", "z")] == [[1, 4], [2, 6], [0, 4], [0, 1]]
    assert counts[("d", "e", "f")] == [[1, 4], [0, 1], [2, 3], [0, 1]]
    kept = draw_paths(paths, 3, seed=3)
    assert len(kept) == 3 and kept == draw_paths(paths, 3, seed=3)
    assert {tuple(p.steps) for s in range(12) for p in draw_paths(paths, 3, seed=s)} == set(by_steps)
    assert draw_paths(paths, 20, seed=0) == paths
    tree.skipped = "root MC is 1"
    assert rollout_paths(tree, problem) == []


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


class _Scripted:
    """Two root solutions, a b c (right) and x y z (wrong); every rollout below "a" is right,
    below "x" wrong, but below "x y" a lucky rollout reaches the right answer."""

    def sample_batch(self, requests, params):
        from mmprm.policy.base import Continuation

        def cont(steps, answer):
            return Continuation("", steps, answer, True, 4, 4)

        out = []
        for r in requests:
            prefix = r.prefix_steps
            if not prefix:  # the right solution twice: it must be annotated once
                out.append([cont(["a", "b", "c"], "40"), cont(["x", "y", "z"], "41"),
                            cont(["a", "b", "c"], "40")][: params.n])
            else:
                answer = "40" if prefix[0] == "a" or prefix == ["x", "y"] else "41"
                out.append([cont(["rest"], answer) for _ in range(params.n)])
        return out


def test_per_step_mc_spends_nothing_after_the_first_zero_and_labels_by_hand():
    k = 5
    tree, paths = drive(per_step_mc(PROBLEM, GRADER, AnnotateConfig(method="mc", k=k, num_solutions=3)), _Scripted())
    labels = {tuple(p.steps): p.labels for p in paths}
    assert len(paths) == 2 and labels == {("a", "b", "c"): [1.0, 1.0, 1.0], ("x", "y", "z"): [0.0, 0.0, 0.0]}
    # the root's 3 solutions, then k rollouts for "a" and "a b", k for "x", and none for "x y" after its zero
    assert tree.rollouts == 3 + 3 * k
    counts = {tuple(p.steps): p.meta["mc_counts"] for p in paths}
    assert counts[("a", "b", "c")][0] == [2, 3] and counts[("a", "b", "c")][-1] == [1, 1]  # root, then the answer
    assert len(counts[("x", "y", "z")]) == 4 and counts[("x", "y", "z")][2:] == [None, None]  # unknown after a zero


def test_omegaprm_selection_scores_are_the_papers_formulas():
    """Q = alpha^(1-MC) * beta^(len/L) and U = c_puct * sqrt(sum N) / (1 + N), by hand."""
    from mmprm.annotate.omegaprm import _q, _u
    from mmprm.annotate.tree import State

    cfg = AnnotateConfig()  # alpha 0.5, beta 0.9, L 500, c_puct 0.125
    state = State(id=1, steps=["a"], parent=0, mc=0.25, visits=3)
    rollout = Rollout(["b"], "1", False, 100)
    assert _q(state, rollout, cfg) == pytest.approx(0.5 ** 0.75 * 0.9 ** 0.2)
    assert _u(state, 16, cfg) == pytest.approx(0.125 * 4 / 4)


def test_omegaprm_searches_where_q_plus_u_is_largest():
    """A: MC 0.5, never visited; B: MC 0.9, visited 5 times; 10 visits in all. By hand:
    Q_A = 0.5^0.5 * 0.9^0.2 = 0.692, U_A = 0.125 * sqrt(10) / 1 = 0.395, sum 1.087;
    Q_B = 0.5^0.1 * 0.9^0.2 = 0.914, U_B = 0.125 * sqrt(10) / 6 = 0.066, sum 0.980.
    Q alone (or Q - U) would pick B; exploration picks A."""
    from mmprm.annotate.omegaprm import select
    from mmprm.annotate.tree import State

    a = State(id=1, steps=["a"], parent=0, mc=0.5, visits=0)
    b = State(id=2, steps=["b"], parent=0, mc=0.9, visits=5)
    wrong = Rollout(["x"], "1", False, 100)
    assert select([(b, wrong), (a, wrong)], 10, AnnotateConfig()) == 1
    assert select([(b, wrong), (a, wrong)], 0, AnnotateConfig()) == 0  # no visits yet: U is 0, Q decides


def test_omegaprm_never_spends_past_a_budget_that_is_a_multiple_of_k():
    for seed in range(12):  # several of these reach the budget exactly in the middle of a binary search
        cfg = AnnotateConfig(k=4, rollout_budget=12, max_searches=100, seed=seed)
        tree, _ = drive(omegaprm(PROBLEM, GRADER, cfg), SimulatedPolicy(error=0.3))
        assert tree.rollouts <= 12, seed  # every estimate is 4 rollouts; none may start once 12 are spent
