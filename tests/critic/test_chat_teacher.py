"""The chat teacher against real servers on loopback: the tiny policy behind
`mmprm serve-policy` (which writes no critique: the parser says so), and a stand-in
teacher server that answers with the simulated teacher's prose critique (which parses
to the critique the ground truth gives)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI  # noqa: E402

from loopback import serving  # noqa: E402
from mmprm.critic.critique import parse  # noqa: E402
from mmprm.critic.teacher import ChatTeacher, SimulatedTeacher  # noqa: E402
from mmprm.data import load_problems  # noqa: E402
from mmprm.data.synth import generate_synthetic  # noqa: E402
from mmprm.policy.hf import HFPolicy  # noqa: E402
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
    assert app.state.stats == {"requests": 1, "images": 1}  # the figure went as a data URI
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
