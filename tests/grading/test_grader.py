import functools
import json
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmprm.grading import HybridGrader, JudgeGrader, RuleGrader, equivalent

ADVERSARIAL = [
    ("5", "2^{2^{2^{2^{2^{20}}}}}"),       # a tower sympy tries to evaluate
    ("5", "(10^{10^{10}})!"),
    ("1", "{" * 900 + "1" + "}" * 900),     # deeply nested braces
    ("1", "9" * 100_000),                  # a 100 kB answer
    ("10^{10^{10}}", "10^{10^{10}} + 1"),
]
TIMEOUT = 1.5
SLACK = 4.0  # a killed worker is replaced; allow for process start-up


@pytest.mark.parametrize("gold, pred", [
    ("0.5", r"\frac{1}{2}"), ("60", "60."), ("10000", "10{,}000"), ("x^2+2x+1", "(x+1)^2"),
    ("3", "3.0"), (r"\sqrt{2}", r"2^{1/2}"), ("1/3", r"\frac{1}{3}"),
])
def test_equal(gold, pred):
    assert RuleGrader().grade(gold, pred).equal


@pytest.mark.parametrize("gold, pred", [("0.5", "0.6"), ("x+1", "x-1"), ("12", "120"), ("3", None), ("3", "")])
def test_not_equal(gold, pred):
    assert not RuleGrader().grade(gold, pred).equal


def test_multiple_choice_letter_and_text():
    g = RuleGrader()
    choices = ["10", "12", "14"]
    assert g.grade("B", "12", choices).equal
    assert g.grade("12", "(B)", choices).equal
    assert g.grade("B", "12.0", choices).equal   # a value equal to the gold option's text
    assert not g.grade("B", "A", choices).equal


def _timed(gold, pred):
    t = time.monotonic()
    result = equivalent(gold, pred, timeout=TIMEOUT)
    return result.equal, time.monotonic() - t


def test_adversarial_from_threads():
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda gp: _timed(*gp), ADVERSARIAL))
    for (gold, pred), (equal, seconds) in zip(ADVERSARIAL, results):
        assert equal is False, (gold, pred[:30])
        assert seconds < TIMEOUT + SLACK, (pred[:30], seconds)
    assert equivalent("2", "2.0").equal  # the pool still works after kills


def test_adversarial_inside_daemonic_worker_processes():
    # Pool workers are daemonic: they may not start multiprocessing children,
    # and signal.alarm does not reach them from a thread; our timeout must hold.
    # The task is the library function itself: a spawned worker cannot import
    # this test module (pytest's importlib mode gives it a name outside sys.path).
    ctx = multiprocessing.get_context("spawn")
    start = time.monotonic()
    with ctx.Pool(2) as pool:
        results = pool.starmap(functools.partial(equivalent, timeout=TIMEOUT), ADVERSARIAL[:3])
    seconds = time.monotonic() - start
    assert [r.equal for r in results] == [False, False, False]
    assert all("timed out" in r.reason or not r.parsed for r in results)
    assert seconds < 2 * (TIMEOUT + SLACK) + 10  # two rounds on two workers, plus the workers' start-up


class _Judge(BaseHTTPRequestHandler):
    """A real HTTP endpoint speaking the OpenAI chat format; it says YES when
    the student answer, spelled out, matches the reference."""

    words = {"two": "2", "three": "3", "half": "0.5"}
    calls = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        prompt = body["messages"][0]["content"]
        gold = prompt.split("Reference answer: ")[1].split("\n")[0]
        pred = prompt.split("Student answer: ")[1].split("\n")[0]
        verdict = "YES" if self.words.get(pred.strip().lower(), pred) == gold else "NO"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def judge_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Judge.calls = 0
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_judge_and_hybrid(judge_url):
    judge = JudgeGrader(judge_url, "judge-model")
    assert judge.grade("2", "two").equal
    assert not judge.grade("3", "two").equal
    hybrid = HybridGrader(RuleGrader(), judge)
    calls = _Judge.calls
    assert hybrid.grade("2", "2.0").equal and _Judge.calls == calls  # rules decided
    assert hybrid.grade("0.5", "half").equal and _Judge.calls == calls + 1  # rules could not parse


def test_judge_unreachable_is_a_clear_error():
    judge = JudgeGrader("http://127.0.0.1:9/v1", "m", max_retries=1, timeout=2)
    with pytest.raises(RuntimeError, match="judge at http://127.0.0.1:9/v1/chat/completions failed"):
        judge.grade("2", "two")
