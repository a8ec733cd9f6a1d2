"""PRM training: the loss falls, eval metrics are logged, a killed run resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmprm.prm import train as train_mod
from mmprm.prm.score import StepPRM
from mmprm.prm.train import PRMTrainConfig, train_prm
from mmprm.training import batch_plan

ROOT = Path(__file__).resolve().parents[2]
FAST = {"batch_size": 4, "lr": 3e-3, "log_every": 2, "num_threads": 1}


def test_loss_falls_and_the_prm_is_saved_with_eval_metrics(synth, base, tmp_path, test_problems):
    out = tmp_path / "prm"
    cfg = PRMTrainConfig(base=base, data=synth / "train" / "paths-small.jsonl", labels="oracle", max_steps=24,
                         eval_data=synth / "test" / "paths-small.jsonl", eval_every=12, **{**FAST, "log_every": 8})
    log = train_prm(cfg, out)
    losses = [e["loss"] for e in log["losses"]]
    assert losses[-1] < losses[0]
    assert [e["step"] for e in log["evals"]] == [12, 24]
    final = log["evals"][-1]
    assert set(final) == {"step", "loss", "accuracy", "auroc", "steps"} and 0 <= final["accuracy"] <= 1
    lines = (synth / "test" / "paths-small.jsonl").read_text().splitlines()
    assert final["steps"] == sum(len(json.loads(line)["steps"]) for line in lines)
    for name in ("model.safetensors", "prm_config.json", "train_config.json", "train_log.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    assert not (out / train_mod.CHECKPOINTS).exists()
    assert json.loads((out / "train_log.json").read_text())["final_loss"] == log["final_loss"]
    scores = StepPRM.from_pretrained(out).score(test_problems[0], [["bar A is 7", "7 + 5 = 12"]])
    assert len(scores[0]) == 2 and all(0 < s < 1 for s in scores[0])


def test_a_killed_run_resumes_to_the_same_weights(synth, base, tmp_path, monkeypatch):
    data = synth / "train" / "paths-small.jsonl"
    kwargs = dict(base=base, data=data, labels="oracle", max_steps=6, save_every=3, seed=1, **FAST)
    train_prm(PRMTrainConfig(**kwargs), tmp_path / "whole")

    real, calls = train_mod.collate_examples, []

    def dying(*args, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(train_mod, "collate_examples", dying)
    with pytest.raises(KeyboardInterrupt):
        train_prm(PRMTrainConfig(**kwargs), tmp_path / "killed")
    assert [p.name for p in (tmp_path / "killed" / train_mod.CHECKPOINTS).iterdir()] == ["step-0000003"]
    monkeypatch.setattr(train_mod, "collate_examples", real)
    log = train_prm(PRMTrainConfig(**kwargs), tmp_path / "killed")
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    resumed = load_file(tmp_path / "killed" / "model.safetensors")
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    whole_log = json.loads((tmp_path / "whole" / "train_log.json").read_text())
    assert [e["loss"] for e in log["losses"]] == [e["loss"] for e in whole_log["losses"]]


def test_other_settings_cannot_resume_a_killed_run_and_a_finished_one_is_kept(synth, base, tmp_path, monkeypatch):
    data = synth / "train" / "paths-small.jsonl"
    kwargs = dict(base=base, data=data, labels="oracle", max_steps=4, save_every=2, **FAST)
    monkeypatch.setattr(train_mod, "step_loss", _dies_at_step(3, train_mod.step_loss))
    with pytest.raises(KeyboardInterrupt):
        train_prm(PRMTrainConfig(**kwargs), tmp_path / "prm")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="other settings"):
        train_prm(PRMTrainConfig(**{**kwargs, "lr": 1e-4}), tmp_path / "prm")
    first = train_prm(PRMTrainConfig(**kwargs), tmp_path / "prm")
    again = train_prm(PRMTrainConfig(**kwargs), tmp_path / "prm")  # finished: nothing to do
    assert again == first


def _dies_at_step(n, real):
    calls = []

    def dying(*args):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args)

    return dying


def test_local_labels_train_from_samples_and_problems(synth, base, tmp_path):
    cfg = PRMTrainConfig(base=base, samples=synth / "test" / "samples.jsonl",
                         problems=synth / "test" / "problems.jsonl", labels="oracle", head="value", max_steps=3,
                         **FAST)
    log = train_prm(cfg, tmp_path / "prm")
    assert log["examples"] == 240 and log["steps"] == 3


def test_length_bucketing_cuts_padding_and_keeps_every_example():
    lengths = [10 + (i * 37) % 300 for i in range(640)]
    for bucket in (False, True):
        plan = batch_plan(lengths, 8, seed=0, total=160, bucket=bucket)
        assert len(plan) == 160 and all(len(b) == 8 for b in plan)
        assert sorted(i for b in plan[:80] for i in b) == list(range(640))  # each epoch sees all once
        assert sorted(i for b in plan[80:] for i in b) == list(range(640))
        assert plan[:80] != plan[80:]  # reshuffled
    padded = {b: sum(max(lengths[i] for i in batch) * len(batch)
                     for batch in batch_plan(lengths, 8, seed=0, total=80, bucket=b)) for b in (False, True)}
    assert padded[True] < 0.7 * padded[False]
    assert batch_plan(lengths, 8, seed=0, total=80) == batch_plan(lengths, 8, seed=0, total=80)
    assert batch_plan(lengths, 8, seed=1, total=80) != batch_plan(lengths, 8, seed=0, total=80)


def test_mmprm_recipe_holds_the_paper_settings():
    cfg = PRMTrainConfig.from_recipe(ROOT / "recipes" / "prm-mmprm.yaml", base="b", data="d")
    assert (cfg.lr, cfg.epochs, cfg.warmup_ratio, cfg.weight_decay, cfg.loss) == (2e-6, 3, 0.03, 0.05, "soft")
    assert PRMTrainConfig.from_recipe(ROOT / "recipes" / "prm-mmprm.yaml", lr=1e-5).lr == 1e-5


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="labels must be one of"):
        PRMTrainConfig(labels="local")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  learning_rate: 1.0\n")
    with pytest.raises(ValueError, match="unknown train settings"):
        PRMTrainConfig.from_recipe(recipe)
