"""`mmprm serve-prm` over real sockets: the client gets the local PRM's scores,
concurrent requests are batched, every limit and fault answers a named 4xx/5xx,
and after each fault a normal request is still answered right and no accepted
request is left unanswered."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image
from serving import ScriptedPRM, expected, variants

from loopback import serving
from mmprm.http import ServiceError
from mmprm.prm.score import StepPRM
from mmprm.serve.prm_client import RemotePRM
from mmprm.serve.prm_server import PRMServeConfig, create_prm_app
from mmprm.types import Problem


def item(question="What is 2 + 2?", candidates=(("2 + 2 = 4", "The answer is 4"),), **extra) -> dict:
    return {"question": question, "candidates": [list(c) for c in candidates], **extra}


def png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def settled(app) -> dict:
    """The server's counters once nothing is in flight: every accepted request ended one way."""
    deadline = time.monotonic() + 10
    while ((stats := app.batcher.stats.to_dict())["in_flight"] or app.inside) and time.monotonic() < deadline:
        time.sleep(0.02)  # a handler may finish just after its client has the answer
    assert stats["in_flight"] == 0 and app.inside == 0
    assert stats["accepted"] == stats["answered"] + stats["failed"] + stats["abandoned"]
    return stats


def still_serves(url: str) -> None:
    r = httpx.post(f"{url}/v1/score", json={"items": [item()]}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["scores"] == [[[expected("2 + 2 = 4"), expected("The answer is 4")]]]


# ---- the tiny PRM through the service -------------------------------------------

@pytest.fixture(scope="module")
def local(prm_dir):
    prm = StepPRM.from_pretrained(prm_dir, batch_size=8)
    yield prm
    prm.close()


def test_remote_scores_equal_local_and_concurrent_requests_share_a_batch(local, problems):
    items = [(p, variants(p)) for p in problems[:8]]
    want = local.score_many(items)
    app = create_prm_app(local, PRMServeConfig(max_wait_ms=50))
    with serving(app) as url:
        client = RemotePRM(url, items_per_request=3)
        try:
            assert client.name == local.name and client.bounded
            got = client.score_many(items)  # 3 requests, one after another
            with ThreadPoolExecutor(8) as pool:  # 8 requests at once, one problem each
                apart = list(pool.map(lambda it: client.score(*it), items))
        finally:
            client.close()
        stats = settled(app)
    flat = lambda s: [x for cands in s for steps in cands for x in steps]  # noqa: E731
    assert len(flat(got)) == sum(len(s) for _, c in items for s in c)
    assert max(abs(a - b) for a, b in zip(flat(got), flat(want))) < 1e-5
    assert max(abs(a - b) for a, b in zip(flat(apart), flat(want))) < 1e-5
    assert stats["answered"] == 3 + 8
    assert stats["batches"] < 3 + 8  # some of the 8 concurrent requests were scored together


def test_without_batching_each_request_is_a_model_call():
    prm = ScriptedPRM(delay=0.05)
    app = create_prm_app(prm, PRMServeConfig(batching=False))
    with serving(app) as url, ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: httpx.post(f"{url}/v1/score", json={"items": [item()]}).status_code,
                              range(6)))
        assert codes == [200] * 6
        assert [len(c) for c in prm.calls] == [1] * 6
        settled(app)


# ---- limits and malformed bodies ------------------------------------------------

LIMITS = PRMServeConfig(max_body_bytes=300_000, max_items=2, max_candidates=2, max_steps=3, max_step_chars=50,
                        max_question_chars=100, max_images=1, max_image_bytes=60_000, max_image_pixels=250_000)


@pytest.mark.parametrize("items, limit", [
    ([item()] * 3, "max_items"),
    ([item(candidates=[["a"]] * 3)], "max_candidates"),
    ([item(candidates=[["a"] * 4])], "max_steps"),
    ([item(candidates=[["x" * 51]])], "max_step_chars"),
    ([item(question="q" * 101)], "max_question_chars"),
    ([item(images=[png(8, 8)] * 2)], "max_images"),
    ([item(images=["data:image/png;base64," + "A" * 100_000])], "max_image_bytes"),
    ([item(images=[png(600, 600)])], "max_image_pixels"),
])
def test_each_limit_is_a_413_naming_the_limit_and_its_value(items, limit):
    app = create_prm_app(ScriptedPRM(), LIMITS)
    with serving(app) as url:
        r = httpx.post(f"{url}/v1/score", json={"items": items})
        assert r.status_code == 413, r.text
        error = r.json()["error"]
        assert error["limit"] == limit and error["value"] == getattr(LIMITS, limit)
        assert f"--{limit.replace('_', '-')}" in error["message"]
        still_serves(url)
        settled(app)


def test_an_oversized_body_is_refused_before_it_is_read():
    app = create_prm_app(ScriptedPRM(), LIMITS)
    with serving(app) as url:
        r = httpx.post(f"{url}/v1/score", json={"items": [item(question="q" * 400_000)]})
        assert r.status_code == 413
        assert r.json()["error"]["limit"] == "max_body_bytes"
        still_serves(url)
        assert app.counts["too_large_413"] == 1
        assert settled(app)["accepted"] == 1  # only the normal request reached the PRM


@pytest.mark.parametrize("body, field", [
    (b"{not json", "body"),
    (json.dumps({"items": [{"question": "q"}]}).encode(), "items.0.candidates"),
    (json.dumps({"items": [item(candidates=[[1, 2]])]}).encode(), "items.0.candidates.0.0"),
    (json.dumps({"items": [item(tokens=5)]}).encode(), "items.0.tokens"),
    (json.dumps({"items": "all of them"}).encode(), "items"),
])
def test_a_malformed_body_is_a_400_or_422_naming_the_field(body, field):
    app = create_prm_app(ScriptedPRM())
    with serving(app) as url:
        r = httpx.post(f"{url}/v1/score", content=body, headers={"content-type": "application/json"})
        assert r.status_code == (400 if field == "body" else 422)
        error = r.json()["error"]
        assert error["param"] == field and error["message"].startswith(field)
        still_serves(url)


def test_the_wrong_model_name_is_refused():
    with serving(create_prm_app(ScriptedPRM())) as url:
        r = httpx.post(f"{url}/v1/score", json={"model": "other", "items": [item()]})
        assert r.status_code == 400 and "'scripted'" in r.json()["error"]["message"]


# ---- images -------------------------------------------------------------------

def test_image_paths_are_served_from_the_root_only(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "fig.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    (root / "notes.png").write_text("not an image")
    app = create_prm_app(ScriptedPRM(), PRMServeConfig(image_root=str(root)))
    with serving(app) as url:
        post = lambda ref: httpx.post(f"{url}/v1/score", json={"items": [item(images=[ref])]})  # noqa: E731
        assert post("fig.png").status_code == 200
        for ref in ("../secret.png", str(tmp_path / "secret.png"), "sub/../../secret.png"):
            r = post(ref)
            assert r.status_code == 400 and "outside the served image root" in r.json()["error"]["message"]
        assert "not found" in post("missing.png").json()["error"]["message"]
        assert "cannot be read as an image" in post("notes.png").json()["error"]["message"]
        bad = post("data:image/png;base64,bm90IGFuIGltYWdl")
        assert bad.status_code == 400 and "cannot be read as an image" in bad.json()["error"]["message"]
        assert "not valid base64" in post("data:image/png;base64,@@@@").json()["error"]["message"]
    with serving(create_prm_app(ScriptedPRM())) as url:  # no root: data URIs only
        r = httpx.post(f"{url}/v1/score", json={"items": [item(images=["fig.png"])]})
        assert r.status_code == 400 and "data URIs only" in r.json()["error"]["message"]


# ---- the key ------------------------------------------------------------------

def test_a_bearer_token_guards_everything_but_health(monkeypatch):
    with serving(create_prm_app(ScriptedPRM(), api_key="s3cret")) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(f"{url}/v1/score", json={"items": [item()]}, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert httpx.get(f"{url}/v1/models", headers=headers).status_code == 401
        with pytest.raises(ServiceError, match="HTTP 401"):
            RemotePRM(url)
        monkeypatch.setenv("MMPRM_PRM_API_KEY", "s3cret")
        client = RemotePRM(url)
        assert client.score(Problem("p", "What is 2 + 2?", "4"), [["2 + 2 = 4"]]) == [[expected("2 + 2 = 4")]]
        client.close()


# ---- faults: a failing PRM, clients that leave or dawdle, a flood ----------------------

def test_a_request_the_prm_fails_on_is_a_500_and_its_batchmates_are_answered():
    prm = ScriptedPRM(delay=0.2)
    app = create_prm_app(prm, PRMServeConfig(max_wait_ms=100))
    with serving(app) as url, ThreadPoolExecutor(4) as pool:
        questions = ["What is 1 + 1?", "BOOM", "What is 3 + 3?", "What is 5 + 5?"]
        answers = list(pool.map(lambda q: httpx.post(f"{url}/v1/score", json={"items": [item(question=q)]}, timeout=30),
                                questions))
        assert [r.status_code for r in answers] == [200, 500, 200, 200]
        assert "cannot score a BOOM question" in answers[1].json()["error"]["message"]
        assert any(len(c) > 1 and "BOOM" in c for c in prm.calls)  # it failed a batch shared with others
        assert ["BOOM"] in prm.calls  # then was scored alone, and failed alone
        still_serves(url)
        stats = settled(app)
        assert stats["failed"] == 1 and stats["answered"] == 4


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _head(length: int) -> bytes:
    return (f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def wait_for(condition, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def read_all(sock: socket.socket) -> str:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_client_that_leaves_mid_body_is_never_scored():
    prm = ScriptedPRM()
    app = create_prm_app(prm)
    with serving(app) as url:
        body = json.dumps({"items": [item()]}).encode()
        s = _raw(url)
        s.sendall(_head(len(body)) + body[: len(body) // 2])
        s.close()
        wait_for(lambda: app.counts["left_early"] == 1, "the server to see the client leave")
        still_serves(url)
        assert settled(app)["accepted"] == 1 and len(prm.calls) == 1


def test_clients_that_leave_while_queued_or_while_scored_are_abandoned_not_answered():
    prm = ScriptedPRM(delay=0.6)
    app = create_prm_app(prm, PRMServeConfig(max_wait_ms=0))
    with serving(app) as url:
        first = _raw(url)  # scored alone, then leaves while the PRM works on it
        body = json.dumps({"items": [item(question="What is 1 + 1?")]}).encode()
        first.sendall(_head(len(body)) + body)
        wait_for(lambda: len(prm.calls) == 1, "the first request to reach the PRM")
        second = _raw(url)  # queued behind it, leaves before its turn
        body = json.dumps({"items": [item(question="What is 3 + 3?")]}).encode()
        second.sendall(_head(len(body)) + body)
        wait_for(lambda: app.batcher.stats.accepted == 2, "the second request to be queued")
        first.close()
        second.close()
        wait_for(lambda: app.batcher.stats.abandoned == 2, "both to be counted abandoned")
        still_serves(url)
        stats = settled(app)
        assert (stats["accepted"], stats["answered"], stats["abandoned"]) == (3, 1, 2)
        assert ["What is 3 + 3?"] not in prm.calls  # the one that left while queued cost no model time


def test_a_slow_client_gets_a_408_while_others_are_served():
    app = create_prm_app(ScriptedPRM(), PRMServeConfig(body_timeout=3.0))
    with serving(app) as url:
        body = json.dumps({"items": [item()]}).encode()
        slow = _raw(url)
        slow.sendall(_head(len(body)) + body[:10])
        start = time.monotonic()
        still_serves(url)  # not held up by the slow upload
        assert time.monotonic() - start < 2.5
        answer = read_all(slow)
        slow.close()
        assert answer.startswith("HTTP/1.1 408") and "--body-timeout" in answer
        assert app.counts["slow_408"] == 1
        settled(app)


def test_a_chunked_body_past_the_limit_is_cut_off_with_a_413():
    app = create_prm_app(ScriptedPRM(), PRMServeConfig(max_body_bytes=1000))
    with serving(app) as url:
        s = _raw(url)
        s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            s.sendall(b"200\r\n" + b" " * 512 + b"\r\n")
        answer = read_all(s)
        s.close()
        assert answer.startswith("HTTP/1.1 413") and "max_body_bytes" in answer
        still_serves(url)
        assert settled(app)["accepted"] == 1


def test_a_flood_past_the_concurrency_limit_gets_429_with_retry_after_and_no_hang(problems):
    prm = ScriptedPRM(delay=0.3)
    app = create_prm_app(prm, PRMServeConfig(max_concurrent_requests=3, batching=False))
    with serving(app) as url:
        def once(k: int) -> httpx.Response:
            return httpx.post(f"{url}/v1/score", json={"items": [item(question=f"What is {k} + 1?")]}, timeout=30)

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(once, range(12)))
        codes = [r.status_code for r in answers]
        assert set(codes) == {200, 429} and codes.count(200) >= 3
        for r in answers:
            if r.status_code == 429:
                assert r.headers["retry-after"] == "1" and r.json()["error"]["limit"] == "max_concurrent_requests"
            else:
                assert r.json()["scores"] == [[[expected("2 + 2 = 4"), expected("The answer is 4")]]]
        # the client honours Retry-After: under the same flood every call gets its scores
        client = RemotePRM(url, max_retries=20)
        question = Problem("p", "What is 7 + 1?", "8")
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda _: client.score(question, [["7 + 1 = 8"]]), range(8)))
        client.close()
        assert got == [[[expected("7 + 1 = 8")]]] * 8
        stats = settled(app)
        assert stats["answered"] == codes.count(200) + 8 and app.counts["busy_429"] >= codes.count(429)


def test_health_and_models_describe_the_prm():
    with serving(create_prm_app(ScriptedPRM())) as url:
        health = httpx.get(f"{url}/health").json()
        assert health["status"] == "ok" and health["model"] == "scripted" and health["in_flight"] == 0
        (model,) = httpx.get(f"{url}/v1/models").json()["data"]
        assert model == {"id": "scripted", "object": "model", "owned_by": "mmprm", "kind": "prm", "bounded": True}


def test_the_client_raises_the_server_reason_for_a_failed_request():
    with serving(create_prm_app(ScriptedPRM())) as url:
        client = RemotePRM(url)
        with pytest.raises(ServiceError, match="HTTP 500.*cannot score a BOOM question"):
            client.score(Problem("b", "BOOM", "0"), [["x"]])
        with pytest.raises(ServiceError, match="HTTP 413.*max-steps"):
            client.score(Problem("p", "q", "0"), [["x"] * 201])
        client.close()


def test_thread_safety_of_the_counters_under_many_small_requests():
    app = create_prm_app(ScriptedPRM())
    with serving(app) as url:
        errors = []

        def hammer():
            with httpx.Client() as c:
                for _ in range(10):
                    r = c.post(f"{url}/v1/score", json={"items": [item()]})
                    if r.status_code != 200:
                        errors.append(r.status_code)

        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert settled(app)["answered"] == 60


@pytest.mark.parametrize("setting", ["max_items", "max_body_bytes", "body_timeout", "max_batch_candidates"])
def test_settings_that_would_refuse_everything_are_refused(setting):
    with pytest.raises(ValueError, match=f"{setting} must be positive"):
        PRMServeConfig(**{setting: 0})
    with pytest.raises(ValueError, match="image_root .* is not a folder"):
        PRMServeConfig(image_root="/no/such/folder")


def test_a_prm_answer_that_is_not_a_finite_score_per_step_is_a_500_not_null():
    with serving(create_prm_app(ScriptedPRM())) as url:
        r = httpx.post(f"{url}/v1/score", json={"items": [item(question="NAN please")]})
        assert r.status_code == 500 and "not a finite number" in r.json()["error"]["message"]
        still_serves(url)


def test_odd_images_are_refused_with_a_400(tmp_path):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    app = create_prm_app(ScriptedPRM(), PRMServeConfig(image_root=str(tmp_path)))
    with serving(app) as url:
        post = lambda ref: httpx.post(f"{url}/v1/score", json={"items": [item(images=[ref])]})  # noqa: E731
        for ref in ("data:image/png;base64," + base64.b64encode(eps).decode(), "a\x00b.png", "x" * 5000 + ".png",
                    "loop.png"):
            r = post(ref)
            assert r.status_code == 400, (ref[:40], r.text)
        still_serves(url)


def test_choices_and_the_pixels_of_a_whole_request_have_limits():
    cfg = PRMServeConfig(max_choices=4, max_question_chars=100, max_request_pixels=150_000)
    with serving(create_prm_app(ScriptedPRM(), cfg)) as url:
        r = httpx.post(f"{url}/v1/score", json={"items": [item(choices=["1", "2", "3", "4", "5"])]})
        assert r.status_code == 413 and r.json()["error"]["limit"] == "max_choices"
        r = httpx.post(f"{url}/v1/score", json={"items": [item(question="q", choices=["x" * 60, "y" * 60])]})
        assert r.status_code == 413 and r.json()["error"]["limit"] == "max_question_chars"
        r = httpx.post(f"{url}/v1/score", json={"items": [item(images=[png(300, 300)]), item(images=[png(300, 300)])]})
        assert r.status_code == 413 and r.json()["error"]["limit"] == "max_request_pixels"
        assert httpx.post(f"{url}/v1/score", json={"items": [item(images=[png(300, 300)])]}).status_code == 200
