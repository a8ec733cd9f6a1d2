"""Mathematical equivalence of two answers, with a timeout that always holds.

Cheap cases (identical text, two plain numbers) are decided here. Everything
else goes to math-verify in a pool of child processes (`verify_worker`): a
check that outruns its timeout has its process killed and counts as "not
equal". This works from threads and from inside worker processes, where
math-verify's signal-based timeout does not.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

from mmprm.grading.extract import all_boxed, normalize_answer

MAX_ANSWER_CHARS = 2000  # longer "answers" are never a final answer; refuse them fast
WORKER_START_TIMEOUT = 120.0


@dataclass
class Equivalence:
    equal: bool
    parsed: bool  # False when the checker could not read one of the answers
    reason: str


_MATH_WORDS = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "sqrt", "frac", "infty", "pi",
               "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "min", "max", "gcd", "lcm", "det", "deg"}


def is_wordy(s: str) -> bool:
    """True for answers in words ("half", "a right angle"): math-verify reads
    them as products of symbols, so its "not equal" there means "cannot tell"."""
    words = re.findall(r"(?<![\\A-Za-z])[A-Za-z]{3,}", s)
    return any(w.lower() not in _MATH_WORDS for w in words)


def as_number(s: str) -> Fraction | None:
    """The exact value of a plain number ('12', '-0.5', '3/4'), else None."""
    t = s.replace(" ", "")
    if t.endswith("%"):
        return None
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            return Fraction(int(num), int(den))
        value = float(t)
    except (ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(value):
        return None
    return Fraction(t) if len(t) < 40 else Fraction(value)


def quick_equivalence(gold: str, pred: str) -> Equivalence | None:
    """Decide without math-verify where it is safe to; None when unsure."""
    g, p = normalize_answer(gold), normalize_answer(pred)
    if not p:
        return Equivalence(False, False, "empty prediction")
    if len(g) > MAX_ANSWER_CHARS or len(p) > MAX_ANSWER_CHARS:
        return Equivalence(False, False, f"answer longer than {MAX_ANSWER_CHARS} characters")
    if g == p:
        return Equivalence(True, True, "identical")
    gn, pn = as_number(g), as_number(p)
    if gn is not None and pn is not None:
        close = gn == pn or abs(float(gn) - float(pn)) <= 1e-6 * max(1.0, abs(float(gn)))
        return Equivalence(close, True, "numbers")
    return None


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mmprm.grading.verify_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        if self._read(WORKER_START_TIMEOUT) is None:
            self.kill()
            raise RuntimeError("the math-verify worker process did not start")

    def _read(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def check(self, gold: str, pred: str, timeout: float, *, pred_as_text: bool = False) -> dict | None:
        """The worker's reply, or None if it timed out or died (then it is dead)."""
        try:
            self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred, "pred_as_text": pred_as_text}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return None
        reply = self._read(timeout)
        if reply is None:
            self.kill()
        return reply

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class VerifierPool:
    """Reusable math-verify worker processes; safe to share between threads."""

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _take(self) -> _Worker:
        try:
            while True:
                worker = self._idle.get_nowait()
                if worker.alive:
                    return worker
        except queue.Empty:
            pass
        worker = _Worker()
        with self._lock:
            self._all.append(worker)
        return worker

    def check(self, gold: str, pred: str, timeout: float, *, pred_as_text: bool = False) -> Equivalence:
        worker = self._take()
        reply = worker.check(gold, pred, timeout, pred_as_text=pred_as_text)
        if reply is None:
            return Equivalence(False, False, f"timed out after {timeout:g} s")
        self._idle.put(worker)
        parsed = reply["gold_parsed"] and reply["pred_parsed"]
        reason = reply.get("error") or ("math-verify" if parsed else "math-verify could not parse")
        return Equivalence(reply["equal"], parsed, reason)

    def close(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not kill the parent's workers
            return
        with self._lock:
            for worker in self._all:
                worker.kill()
            self._all.clear()


_POOL: VerifierPool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> VerifierPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._pid != os.getpid():
            _POOL = VerifierPool()
            atexit.register(_POOL.close)
        return _POOL


def equivalent(gold: str, pred: str | None, *, timeout: float = 5.0) -> Equivalence:
    """Is `pred` mathematically equal to `gold`? Gold is parsed first, as
    math-verify expects; anything that fails or times out is "not equal".

    A "not equal" is checked again with the readings math-verify alone would
    also find, so the rules never do worse than it: decimal commas where the
    gold writes one ("1,22"), several boxed answers read as one list, and the
    prediction as free text left to math-verify's own extraction (an answer
    stated in a sentence)."""
    if pred is None:
        return Equivalence(False, False, "no answer")
    quick = quick_equivalence(gold, pred)
    if quick is not None and (quick.equal or not _decimal_comma(gold)):
        return quick
    if len(normalize_answer(gold)) > MAX_ANSWER_CHARS or len(pred) > 4 * MAX_ANSWER_CHARS:
        return Equivalence(False, False, f"answer longer than {MAX_ANSWER_CHARS} characters")
    deadline = time.monotonic() + timeout  # one budget for all readings: the timeout holds per answer
    result = _pool().check(normalize_answer(gold), normalize_answer(pred), timeout)
    for reading, (g, p, raw) in _other_readings(gold, pred).items():
        left = deadline - time.monotonic()
        if result.equal or left <= 0:
            break
        again = _pool().check(g, p, left, pred_as_text=raw)
        if again.equal:
            return Equivalence(True, True, f"math-verify ({reading})")
    if not result.equal and result.parsed and (is_wordy(gold) or is_wordy(pred)):
        return Equivalence(False, False, "answer in words")
    return result


_DECIMAL_COMMA = re.compile(r"-?\d+,(?:\d{1,2}|\d{4,})")


def _decimal_comma(text: str) -> bool:
    """'1,22' or '3,14159': a comma that cannot be a thousands separator."""
    return bool(_DECIMAL_COMMA.fullmatch(normalize_answer(text)))


def _other_readings(gold: str, pred: str) -> dict[str, tuple[str, str, bool]]:
    """(gold, prediction, prediction is free text) for each second reading that applies."""
    out: dict[str, tuple[str, str, bool]] = {}
    g = normalize_answer(gold)
    if _decimal_comma(gold):
        out["decimal comma"] = (g.replace(",", "."), normalize_answer(pred).replace(",", "."), False)
    boxed = all_boxed(pred)
    if len(boxed) > 1:
        out["several boxed answers"] = (g, ", ".join(normalize_answer(b) for b in boxed), False)
    out["answer in the text"] = (g, pred, True)
    return out
