"""Settings dataclasses drive the flags, the recipes and the help (mmprm.config)."""

import argparse

import pytest

from mmprm.annotate.config import AnnotateConfig
from mmprm.config import add_flags, config_from_args
from mmprm.policy.config import TrainConfig
from mmprm.search.tree_search import SearchConfig


def _parse(cls, argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe")
    add_flags(parser, cls)
    return parser, parser.parse_args(argv)


def test_defaults_then_recipe_then_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("search:\n  n: 8\n  width: 2\n  aggregation: min\n")
    _, args = _parse(SearchConfig, ["--recipe", str(recipe), "--width", "4", "--method", "dvts"])
    cfg = config_from_args(SearchConfig, args, "search")
    assert (cfg.method, cfg.n, cfg.width, cfg.aggregation, cfg.max_depth) == ("dvts", 8, 4, "min", 12)


def test_flags_are_typed_and_validated_by_the_dataclass():
    _, args = _parse(AnnotateConfig, ["--k", "4", "--searches", "3", "--paths", "rollouts", "--max-rollout-paths", "5"])
    cfg = config_from_args(AnnotateConfig, args, "annotate")
    assert (cfg.k, cfg.max_searches, cfg.max_rollout_paths) == (4, 3, 5)  # an alias sets the same field
    parser, _ = _parse(AnnotateConfig, [])
    with pytest.raises(SystemExit):
        parser.parse_args(["--paths", "everything"])  # choices come from the field
    _, args = _parse(SearchConfig, ["--width", "0"])
    with pytest.raises(ValueError, match="width must be at least 1"):
        config_from_args(SearchConfig, args, "search")


def test_help_shows_the_dataclass_defaults_and_lists_parse(capsys):
    parser, args = _parse(TrainConfig, ["--data", "d", "--steps", "5", "--save-at", "4,2"])
    assert config_from_args(TrainConfig, args, "policy").save_at == [2, 4]
    parser.print_help()
    text = " ".join(capsys.readouterr().out.split())
    assert "peak learning rate (default: 0.002)" in text
    assert "optimizer steps (required, here or in the recipe)" in text
    assert "--model" not in text  # a dict setting has no flag


def test_missing_required_settings_are_named():
    _, args = _parse(TrainConfig, ["--data", "d"])
    with pytest.raises(ValueError, match="missing policy settings: steps"):
        config_from_args(TrainConfig, args, "policy")
