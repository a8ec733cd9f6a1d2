"""A child process that runs math-verify, one JSON request per line.

math-verify's own timeout uses signal.alarm, which only works on the main
thread of the main interpreter. Running it here, in a separate process that
the parent kills when an answer takes too long, gives a timeout that holds
from any thread and inside worker processes.
"""

from __future__ import annotations

import json
import sys


def _parse(text: str):
    from math_verify import parse

    # Wrapping in $…$ lets LaTeX extraction see bare answers such as "\frac{1}{2}".
    parsed = parse(f"${text}$", parsing_timeout=None)
    if not parsed:
        parsed = parse(text, parsing_timeout=None)
    return parsed


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.CRITICAL)
    from math_verify import parse, verify

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            gold = _parse(req["gold"])
            # free text: math-verify's own extraction finds the answer in a sentence
            pred = parse(req["pred"], parsing_timeout=None) if req.get("pred_as_text") else _parse(req["pred"])
            equal = bool(gold and pred and verify(gold, pred, timeout_seconds=None))
            reply = {"equal": equal, "gold_parsed": bool(gold), "pred_parsed": bool(pred)}
        except Exception as e:  # noqa: BLE001 - any failure of the checker means "not equal"
            reply = {"equal": False, "gold_parsed": False, "pred_parsed": False, "error": repr(e)[:200]}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
