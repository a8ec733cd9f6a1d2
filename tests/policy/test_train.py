"""Policy training: the loss falls, checkpoints are usable, a killed run resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mmprm import sft
from mmprm.data.synth import generate_synthetic
from mmprm.policy import train as train_mod
from mmprm.policy.hf import HFPolicy
from mmprm.policy.prompt import build_messages
from mmprm.policy.train import TrainConfig, train_policy


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    generate_synthetic(32, 3, d / "train", split="train")
    generate_synthetic(8, 4, d / "test", split="test")
    return d


def test_loss_falls_and_outputs_are_saved(data, tmp_path):
    out = tmp_path / "policy"
    log = train_policy(TrainConfig(data / "train", steps=30, batch_size=8, lr=3e-3, save_at=[10],
                                   eval_data=data / "test" / "problems.jsonl"), out)
    losses = [e["loss"] for e in log["losses"]]
    assert losses[-1] < 0.6 * losses[0]
    assert json.loads((out / "train_log.json").read_text())["final_loss"] == log["final_loss"]
    assert json.loads((out / "train_config.json").read_text())["steps"] == 30
    assert [c["step"] for c in log["checkpoints"]] == [10, 30]
    assert [e["step"] for e in log["evals"]] == [10, 30]
    for path in (out, out / "checkpoint-10"):
        assert (path / "model.safetensors").is_file()
        policy = HFPolicy(path)  # each checkpoint is a complete, loadable policy
        assert policy.multimodal


def test_loss_is_only_on_the_assistant_tokens(data):
    problems = train_mod._load(data / "train", data / "unused.jsonl")
    from mmprm.policy.tiny.model import new_tiny_policy

    model, processor = new_tiny_policy()
    target = train_mod.reference_of(problems[0])
    ex = sft.encode_chat(build_messages(problems[0]), target, processor)
    batch = sft.collate([ex], processor, model.config)
    labelled = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert processor.tokenizer.decode(labelled) == target + "<|im_end|>"
    assert int((batch["input_ids"] == model.config.image_token_id).sum()) == 16
    assert batch["pixel_values"].shape[0] == 64  # 8 x 8 patches of one 112x112 image


def test_a_killed_run_resumes_to_the_same_weights(data, tmp_path, monkeypatch):
    kwargs = {"steps": 6, "batch_size": 4, "save_every": 3, "seed": 1}
    train_policy(TrainConfig(data / "train", **kwargs), tmp_path / "whole")

    real_collate, calls = sft.collate, []

    def dying_collate(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_collate(*args)

    monkeypatch.setattr(sft, "collate", dying_collate)
    with pytest.raises(KeyboardInterrupt):
        train_policy(TrainConfig(data / "train", **kwargs), tmp_path / "killed")
    assert (tmp_path / "killed" / sft.STATE_FILE).exists()
    monkeypatch.setattr(sft, "collate", real_collate)
    log = train_policy(TrainConfig(data / "train", **kwargs), tmp_path / "killed")
    assert [e["step"] for e in log["losses"]] == [6]
    assert not (tmp_path / "killed" / sft.STATE_FILE).exists() and not (tmp_path / "killed" / "last").exists()
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    resumed = load_file(tmp_path / "killed" / "model.safetensors")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_resuming_with_other_settings_is_refused(data, tmp_path, monkeypatch):
    monkeypatch.setattr(sft, "collate", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "p"
    out.mkdir()
    torch.save({"step": 3, "log": {"config": {"lr": 1.0}}}, out / sft.STATE_FILE)
    with pytest.raises(ValueError, match="other settings"):
        train_policy(TrainConfig(data / "train", steps=6, batch_size=4), out)


def test_bad_data_is_reported_with_its_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="problems.jsonl"):
        train_policy(TrainConfig(tmp_path, steps=1), tmp_path / "out")
