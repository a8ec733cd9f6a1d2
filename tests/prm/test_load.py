"""PRM specs: a trained folder, a published PRM by scheme, the likelihood baseline."""

from __future__ import annotations

import json

import pytest
from standins import standin
from transformers import AutoTokenizer

from mmprm.policy.tiny.model import save_policy
from mmprm.prm.load import load_prm
from mmprm.prm.schemes import SCHEMES, get_scheme
from mmprm.prm.score import StepPRM
from mmprm.types import Problem

CANDIDATES = [["bar A is 7", "7 + 5 = 12"], ["bar A is 3", "3 + 5 = 9", "9 - 1 = 8"]]


def save_standin(name, path):
    """Save a stand-in as its published checkpoint would be; returns it in memory as loaded
    (a text Qwen2 folder reloads its tokenizer as Qwen2Tokenizer, which splits digits)."""
    model, processor = standin(name, seed=7)
    if hasattr(processor, "image_processor"):
        save_policy(model.backbone, processor, path)
        return model.eval(), processor
    model.backbone.save_pretrained(path)
    processor.save_pretrained(path)
    return model.eval(), AutoTokenizer.from_pretrained(path)


@pytest.mark.parametrize("name", list(SCHEMES))
def test_published_prms_load_by_scheme_and_score_as_in_memory(name, tmp_path, test_problems):
    model, processor = save_standin(name, tmp_path / name)
    p = test_problems[0]
    problem = p if get_scheme(name).shows_images else Problem(p.id, p.question, p.answer)
    loaded = load_prm(f"{name}:{tmp_path / name}")
    assert loaded.name == f"{name}:{tmp_path / name}" and loaded.bounded
    expected = StepPRM(model, processor, get_scheme(name)).score(problem, CANDIDATES)
    got = loaded.score(problem, CANDIDATES)
    assert [len(s) for s in got] == [2, 3]
    assert max(max(g) for g in got) - min(min(g) for g in got) > 1e-3  # scores that can disagree
    assert all(abs(a - b) < 1e-5 for g, e in zip(got, expected) for a, b in zip(g, e))


def test_remote_code_needs_the_flag(tmp_path):
    save_standin("math-shepherd", tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="--trust-remote-code"):
        load_prm(f"math-shepherd:{tmp_path / 'm'}")


def test_bad_specs_say_what_is_expected(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ValueError, match="not an mmprm PRM"):
        load_prm(str(tmp_path / "model"))
    with pytest.raises(ValueError, match="SCHEME:PATH"):
        load_prm("nowhere")
    with pytest.raises(FileNotFoundError, match="local folders"):
        load_prm("math-shepherd:/no/such/model")


def test_a_checkpoint_without_the_scheme_tag_is_refused(tmp_path):
    model, processor = standin("mmprm", seed=7)
    save_policy(model.backbone, processor, tmp_path / "m")  # has <step_score>, not <prm>
    with pytest.raises(ValueError, match="lacks the mm-prm step tag"):
        load_prm(f"mm-prm:{tmp_path / 'm'}")
