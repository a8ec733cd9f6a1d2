"""A PRM served by `mmprm serve-prm`, used like a local one (`--prm http://HOST:PORT`).

Search, scoring and evaluation take it wherever they take a PRM. Images go
as data URIs (read once per image), so the server needs no access to the
client's files. A busy or restarting server is retried (429 honouring
Retry-After, 502-504, timeouts, dropped connections); the server's 500
means the PRM failed on that request and is raised at once, as is any 4xx
(a limit or a malformed field: retrying cannot help).
"""

from __future__ import annotations

import os

import httpx

from mmprm.http import Retrying
from mmprm.io import image_data_uri
from mmprm.prm.base import PRM
from mmprm.types import Problem

API_KEY_ENV = "MMPRM_PRM_API_KEY"


class RemotePRM(PRM):
    """The PRM at `url` (e.g. `http://127.0.0.1:8000`). Its name is the served PRM's
    name, so outputs record which PRM scored them, not which transport carried it."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 120.0, max_retries: int = 5,
                 backoff: float = 0.5, items_per_request: int = 16):
        if items_per_request < 1:
            raise ValueError(f"items_per_request must be at least 1, got {items_per_request}")
        self.url = url.rstrip("/")
        self.items_per_request = items_per_request
        key = api_key or os.environ.get(API_KEY_ENV)
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {key}"} if key else {})
        self._retrying = Retrying("PRM server", max_retries=max_retries, backoff=backoff,
                                  retry_statuses=frozenset({502, 503, 504}))
        self._images: dict[str, str] = {}
        try:
            served = self._retrying.get(self._client, f"{self.url}/v1/models", _models_problem)["data"][0]
        except BaseException:
            self._client.close()
            raise
        self.name = str(served["id"])
        self.bounded = bool(served.get("bounded", True))

    def score(self, problem: Problem, candidates: list[list[str]]) -> list[list[float]]:
        return self.score_many([(problem, candidates)])[0]

    def score_many(self, items: list[tuple[Problem, list[list[str]]]]) -> list[list[list[float]]]:
        out: list[list[list[float]]] = []
        for start in range(0, len(items), self.items_per_request):
            chunk = items[start : start + self.items_per_request]
            body = {"model": self.name, "items": [self._item(p, cands) for p, cands in chunk]}
            data = self._retrying.post(self._client, f"{self.url}/v1/score", body, lambda d: _scores_problem(d, chunk))
            out += data["scores"]
        return out

    def _item(self, problem: Problem, candidates: list[list[str]]) -> dict:
        if len(self._images) > 64:  # the images of a few problems, not of a dataset
            self._images.clear()
        return {"id": problem.id, "question": problem.question, "choices": problem.choices,
                "images": [image_data_uri(ref, self._images) for ref in problem.images], "candidates": candidates}

    def close(self) -> None:
        self._client.close()


def _models_problem(data: object) -> str | None:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list) or not data["data"]:
        return "no model listed at /v1/models"
    if not isinstance(data["data"][0], dict) or "id" not in data["data"][0]:
        return "the listed model has no id"
    return None


def _scores_problem(data: object, items: list[tuple[Problem, list[list[str]]]]) -> str | None:
    """What is wrong with a /v1/score answer for `items`, or None: one score per step, numbers only."""
    if not isinstance(data, dict) or not isinstance(data.get("scores"), list):
        return "no 'scores' list"
    if len(data["scores"]) != len(items):
        return f"{len(data['scores'])} score lists for {len(items)} items"
    for scores, (_, candidates) in zip(data["scores"], items):
        if not isinstance(scores, list) or len(scores) != len(candidates):
            return "an item's scores do not match its candidates"
        for row, steps in zip(scores, candidates):
            if not isinstance(row, list) or len(row) != len(steps):
                return "a candidate's scores do not match its steps"
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in row):
                return "a score is not a number"
    return None

