"""The chat teacher against real servers on loopback: the tiny policy behind
`mmprm serve-policy` (which writes no critique: the parser says so), and a stand-in
teacher server that answers with the simulated teacher's prose critique (which parses
to the critique the ground truth gives)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI  # noqa: E402

from loopback import serving  # noqa: E402
from mmprm.critic.critique import parse  # noqa: E402
from mmprm.critic.teacher import ChatTeacher, SimulatedTeacher  # noqa: E402
from mmprm.critic.verdicts import from_token_logprobs  # noqa: E402
from mmprm.data import load_problems  # noqa: E402
from mmprm.data.synth import generate_synthetic  # noqa: E402
from mmprm.policy.hf import HFPolicy  # noqa: E402
from mmprm.prm.load import load_prm  # noqa: E402
from mmprm.serve.openai_server import create_app  # noqa: E402

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    d = tmp_path_factory.mktemp("teacher-data")
    generate_synthetic(2, 4, d, split="test", families=["bartotal"], min_steps=3, max_steps=3)
    return load_problems(d / "problems.jsonl")[0]


def test_a_model_that_writes_no_critique_is_parsed_as_no_verdict(problem):
    app = create_app(HFPolicy(str(ASSETS / "tiny-policy-weak")), model_name="tiny")
    steps = [s["text"] for s in problem.meta["reference_steps"]]
    with serving(app) as url:
        teacher = ChatTeacher(f"{url}/v1", "tiny", max_tokens=24)
        text = teacher.critique(problem, steps)
        teacher.close()
    assert isinstance(text, str)
    assert (app.state.stats["requests"], app.state.stats["images"]) == (1, 1)  # the figure went as a data URI
    parsed = parse(text, len(steps), "prose")
    assert parsed.critique is None and parsed.reason


def test_a_teacher_server_critique_travels_and_parses(problem):
    seen: list[dict] = []
    simulated = SimulatedTeacher(0.0, layout="prose")
    wrong = [s["text"] for s in problem.meta["reference_steps"]]
    wrong[1] = wrong[1].rsplit(" ", 1)[0] + " 99"  # misread the second bar
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        seen.append(body)
        return {"choices": [{"index": 0, "message": {"role": "assistant",
                                                      "content": simulated.critique(problem, wrong)}}]}

    with serving(app) as url:
        teacher = ChatTeacher(f"{url}/v1", "gpt-4o")
        parsed = parse(teacher.critique(problem, wrong), len(wrong), "prose")
        teacher.close()
    assert parsed.critique == SimulatedTeacher.true_critique(problem, wrong)
    assert parsed.critique.first_error == 1
    user = seen[0]["messages"][1]["content"]
    assert user[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "Step 2: " + wrong[1] in user[1]["text"] and seen[0]["model"] == "gpt-4o"


def test_a_chat_critic_reads_its_verdicts_odds_from_the_servers_logprobs(problem):
    """`--prm critic:chat:URL#MODEL`: where the server returns token logprobs, each verdict's
    P(correct) is the mass on "correct" against "incorrect" at the verdict's token."""
    simulated = SimulatedTeacher(0.0, layout="prose")
    wrong = [s["text"] for s in problem.meta["reference_steps"]]
    wrong[1] = wrong[1].rsplit(" ", 1)[0] + " 99"
    text = simulated.critique(problem, wrong)
    odds = iter([{"\\boxed{correct}": 0.8, "\\boxed{incorrect}": 0.15},  # step 1, judged right
                 {"\\boxed{incorrect}": 0.7, "\\boxed{correct}": 0.3}])  # step 2, judged wrong
    content = []
    for token in re.findall(r"\S+|\s+", text):
        top = next(odds) if token.startswith("\\boxed{") else {token: 0.99}
        content.append({"token": token, "logprob": math.log(top.get(token, 0.5)),
                        "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in top.items()]})
    asked: list[dict] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        asked.append(body)
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": {"content": content}}], "usage": {"completion_tokens": len(content)}}

    with serving(app) as url:
        prm = load_prm(f"critic:chat:{url}/v1#judge")
        scores, notes = prm.explain_many([(problem, [wrong])])
        prm.close()
    assert scores[0][0] == pytest.approx([0.8 / 0.95, 0.3, 0.3])
    assert notes == [[text]] and asked[0]["logprobs"] is True and asked[0]["top_logprobs"] == 5


def test_token_logprobs_that_do_not_spell_the_text_give_no_odds_and_an_unlisted_rival_gets_the_rest():
    text = ("Step 1.\nIntent: a\nAlignment with the figure: b\nLogic: c\nVerdict: \\boxed{correct}\n\n"
            "First incorrect step: none")
    assert from_token_logprobs(text, [("Step", {"Step": 0.0})], "prose") is None
    at = text.index("correct}")
    tokens = [(text[:at], {text[:at]: 0.0}), (text[at:], {text[at:]: math.log(0.6)})]
    assert from_token_logprobs(text, tokens, "prose") == [pytest.approx(0.6)]  # "incorrect" holds the other 0.4
