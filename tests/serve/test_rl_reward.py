"""RL step rewards against a real served PRM: `mmprm serve-prm` started as a command
on a loopback port, examples/rl_reward.py run as documented, its rewards checked
against the same PRM scored in-process. TRL and verl are imported only if present."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving import ScriptedPRM, expected

from mmprm.aggregate import aggregate
from mmprm.prm.score import StepPRM
from mmprm.rl import PRMReward
from mmprm.steps import split_steps

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(prm_dir, tmp_path_factory):
    """`mmprm serve-prm --prm PRM_DIR` as a separate process; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    log = (tmp_path_factory.mktemp("serve-prm") / "server.log").open("w")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mmprm.cli", "serve-prm", "--prm", str(prm_dir), "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, Path(log.name).read_text()[-3000:]
        assert time.monotonic() < deadline, "serve-prm did not start"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_the_documented_rl_example_runs_against_serve_prm_and_matches_the_local_prm(served, prm_dir, data_dir,
                                                                                      problems):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "rl_reward.py"), served,
                           str(data_dir / "problems.jsonl")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    local = StepPRM.from_pretrained(prm_dir)
    for k, steps in enumerate(out["steps"]):
        problem = problems[k // 2]
        want = local.score(problem, [steps])[0]
        assert len(steps) == len(problem.meta["reference_steps"])
        assert max(abs(a - b) for a, b in zip(out["step_rewards"][k], want)) < 1e-5
        assert abs(out["trl"][k] - min(want)) < 1e-5
    assert out["verl"]["score"] == pytest.approx(out["trl"][0], abs=1e-6)
    assert out["verl"]["prm_steps"] == len(out["steps"][0])
    local.close()


def test_rewards_split_steps_aggregate_and_locate_each_step():
    reward = PRMReward(ScriptedPRM(), aggregation="last")
    text = "First, 2 + 2 = 4.\n\nThen 4 * 3 = 12.\n\nSo the answer is \\boxed{12}."
    (r, empty) = reward.rewards(["What is (2 + 2) * 3?", "q"], [text, "   "])
    assert r.steps == split_steps(text) and len(r.steps) == 3
    assert r.step_rewards == [expected(s) for s in r.steps]
    assert r.outcome == r.step_rewards[-1]
    assert [text[: e].endswith(s) for e, s in zip(r.step_ends, r.steps)] == [True] * 3
    assert empty.steps == [] and empty.outcome == 0.0
    for how in ("min", "product", "mean"):
        got = PRMReward(ScriptedPRM(), aggregation=how)(["q"], [[{"role": "assistant", "content": text}]])
        assert got == [pytest.approx(aggregate([expected(s) for s in r.steps], how))]


def test_rewards_refuse_what_they_cannot_read():
    reward = PRMReward(ScriptedPRM())
    with pytest.raises(ValueError, match="2 prompts for 1 completions"):
        reward(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="must be absolute"):
        reward(["a"], ["x"], images=[["fig.png"]])
    with pytest.raises(ValueError, match="aggregation must be one of"):
        PRMReward(ScriptedPRM(), aggregation="sum_logit")


def test_trl_calls_the_reward_as_it_calls_its_own_reward_functions():
    pytest.importorskip("trl")
    reward = PRMReward(ScriptedPRM())
    assert reward.__name__ == "prm_min"
    # GRPOTrainer passes prompts, completions, completion_ids and the dataset's columns
    got = reward(prompts=["q"], completions=["2 + 2 = 4"], completion_ids=[[1, 2]], trainer_state=None)
    assert got == [expected("2 + 2 = 4")]
