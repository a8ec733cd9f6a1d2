"""Policy backend for an OpenAI-compatible server: vLLM, or `mmprm serve-policy`.

Annotation and search send many small requests, so they run concurrently
(bounded by a semaphore) on an event loop of the backend's own, in a helper
thread: `sample_batch` can then be called from plain code and from code that
is already inside an event loop alike. A busy or restarting server is the
normal case at scale, so 429s, 5xx, timeouts and dropped connections are
retried with exponential backoff; what still fails is reported naming the URL.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import FIRST_COMPLETED, Future, wait

import httpx

from mmprm.grading.extract import extract_answer
from mmprm.http import Retrying
from mmprm.io import image_data_uri
from mmprm.policy.base import Continuation, Policy, Request, SampleStream, SamplingParams
from mmprm.policy.prompt import build_messages
from mmprm.steps import parse_output


class OpenAIPolicy(Policy):
    """Samples from `model` served at `base_url` (e.g. `http://host:8000/v1`).

    `mode="chat"` posts to /chat/completions (images as base64 data URIs; a
    prefix is continued with vLLM's `continue_final_message`); `"completions"`
    posts a plain-text prompt to /completions, for text-only models.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        mode: str = "chat",
    ):
        if mode not in ("chat", "completions"):
            raise ValueError(f"mode must be 'chat' or 'completions', got {mode!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{self.base_url}#{model}"
        self.mode = mode
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._retrying = Retrying("policy server", max_retries=max_retries, backoff=backoff)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._limit: asyncio.Semaphore | None = None  # shared by concurrent sample_batch calls
        self._lock = threading.Lock()

    # -- the Policy interface -------------------------------------------------

    def sample_batch(self, requests: list[Request], params: SamplingParams) -> list[list[Continuation]]:
        if not requests:
            return []
        images: dict[str, str] = {}  # path -> data URI: a problem's image is read once a batch
        bodies = [self._body(r, params, images) for r in requests]  # bad input fails before anything is sent
        future = asyncio.run_coroutine_threadsafe(self._sample_all(requests, bodies, params), self._ensure_loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C: stop the requests still queued
            raise

    def close(self) -> None:
        with self._lock:
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = self._limit = None
        if loop is None:
            return
        if client is not None:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    # -- the event loop of our own ------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready: Future = Future()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    self._client = httpx.AsyncClient(
                        timeout=self.timeout,
                        headers=self._headers,
                        limits=httpx.Limits(max_connections=self.concurrency),
                    )
                    self._limit = asyncio.Semaphore(self.concurrency)
                    loop.call_soon(ready.set_result, None)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name=f"openai-policy {self.base_url}", daemon=True)
                self._thread.start()
                ready.result()
                self._loop = loop
            return self._loop

    def stream(self) -> SampleStream:
        return OpenAIStream(self)

    async def _one(self, req: Request, body: dict, params: SamplingParams) -> list[Continuation]:
        async with self._limit:
            data = await self._post(self._path(), body, params.n)
        return self._continuations(req, data, params)

    async def _sample_all(
        self, requests: list[Request], bodies: list[dict], params: SamplingParams
    ) -> list[list[Continuation]]:
        tasks = [asyncio.ensure_future(self._one(r, b, params)) for r, b in zip(requests, bodies)]
        try:
            return list(await asyncio.gather(*tasks))
        finally:  # after a failure (or a cancel), send no more requests
            for t in tasks:
                t.cancel()

    # -- building requests --------------------------------------------------

    def _path(self) -> str:
        return "/chat/completions" if self.mode == "chat" else "/completions"

    def _body(self, req: Request, params: SamplingParams, images: dict[str, str]) -> dict:
        messages = build_messages(req.problem, req.prefix_steps)
        body: dict = {
            "model": self.model,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.top_k > 0:
            body["top_k"] = params.top_k  # a vLLM extension: not sent when unused
        if params.stop:
            body["stop"] = list(params.stop)
        seed = req.seed if req.seed is not None else params.seed
        if seed is not None:  # per request, so a request's samples do not depend on its batch
            body["seed"] = seed
        if params.n > 1:
            body["return_token_ids"] = True  # vLLM's extension: exact per-sample token counts
        if self.mode == "completions":
            if req.problem.images:
                raise ValueError(
                    f"problem {req.problem.id!r} has images, but mode='completions' sends text only; use mode='chat'"
                )
            body["prompt"] = plain_prompt(messages)
            return body
        body["messages"] = [openai_message(m, images) for m in messages]
        if req.prefix_steps:  # vLLM's extension: continue the partial assistant message
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        return body

    # -- sending, with retries --------------------------------------------------

    async def _post(self, path: str, body: dict, n: int) -> dict:
        return await self._retrying.apost(self._client, self.base_url + path, body, lambda data: self._check(data, n))

    def _check(self, data: object, n: int) -> str | None:
        """What is wrong with a 200 response body, or None."""
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            return "no 'choices' list"
        if len(data["choices"]) != n:
            return f"{len(data['choices'])} choices for n={n}"
        for c in data["choices"]:
            if not isinstance(c, dict):
                return "a choice is not an object"
            if self.mode == "chat" and not isinstance(c.get("message"), dict):
                return "a choice has no 'message'"
            text = c.get("text") if self.mode == "completions" else c["message"].get("content")
            if text is not None and not isinstance(text, str):
                return "a choice's text is not a string"
        return None

    # -- reading responses ------------------------------------------------------

    def _continuations(self, req: Request, data: dict, params: SamplingParams) -> list[Continuation]:
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        if self.mode == "chat":
            texts = [c["message"].get("content") or "" for c in choices]
        else:
            texts = [c.get("text") or "" for c in choices]
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        if all(isinstance(c.get("token_ids"), list) for c in choices):
            completion = [len(c["token_ids"]) for c in choices]
        else:
            completion = _split_tokens(int(usage.get("completion_tokens") or 0), texts)
        out = []
        for c, text, tokens in zip(choices, texts, completion):
            out.append(
                Continuation(
                    text=text,
                    steps=parse_output(text).steps,
                    answer=extract_answer(text, req.problem.choices),
                    finished=_finished(c, params),
                    prompt_tokens=prompt_tokens,
                    completion_tokens=tokens,
                )
            )
        return out


class OpenAIStream(SampleStream):
    """Each request is posted as soon as it is submitted (up to the backend's
    concurrency) and returned as soon as it is answered, so the server's own
    continuous batching never waits for the slowest request of a round."""

    def __init__(self, policy: OpenAIPolicy):
        super().__init__(policy)
        self.pending: dict[Future, object] = {}
        self.images: dict[str, str] = {}  # path -> data URI, for the problems of the last few requests

    def submit(self, key: object, request: Request, params: SamplingParams) -> None:
        params.check()
        if len(self.images) > 64:  # a long run sees thousands of images: keep only recent ones
            self.images.clear()
        body = self.policy._body(request, params, self.images)
        coroutine = self.policy._one(request, body, params)
        self.pending[asyncio.run_coroutine_threadsafe(coroutine, self.policy._ensure_loop())] = key

    def __len__(self) -> int:
        return len(self.pending)

    def completed(self) -> list[tuple[object, list[Continuation]]]:
        if not self.pending:
            return []
        done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
        return [(self.pending.pop(f), f.result()) for f in done]

    def close(self) -> None:
        for future in self.pending:
            future.cancel()  # stop the requests still queued
        self.pending.clear()


def plain_prompt(messages: list[dict]) -> str:
    """A chat as plain text, for text-only models on /completions.

    The system text, the question, then the solution so far, which the model
    continues; kept simple so that any base model can follow it.
    """
    parts, solution = [], ""
    for m in messages:
        content = m["content"]
        text = content if isinstance(content, str) else "\n".join(p["text"] for p in content if p["type"] == "text")
        if m["role"] == "assistant":
            solution = text
        elif m["role"] == "user":
            parts.append(f"Question: {text}")
        else:
            parts.append(text)
    return "\n\n".join(parts) + "\n\nSolution:\n" + solution


def openai_message(message: dict, images: dict[str, str]) -> dict:
    """Our `{"type": "image", "image": REF}` parts as OpenAI `image_url` parts."""
    content = message["content"]
    if isinstance(content, str):
        return message
    parts = []
    for p in content:
        if p["type"] == "image":
            parts.append({"type": "image_url", "image_url": {"url": image_data_uri(p["image"], images)}})
        else:
            parts.append(p)
    return {**message, "content": parts}


def _finished(choice: dict, params: SamplingParams) -> bool:
    """The solution ended by itself: not cut by max_tokens or by one of our stop strings.

    vLLM reports which stop string matched in `stop_reason` (None for EOS)."""
    if choice.get("finish_reason") != "stop":
        return False
    return choice.get("stop_reason") not in params.stop


def _split_tokens(total: int, texts: list[str]) -> list[int]:
    """Per-choice completion tokens where the server gives only the total over
    all n choices (servers without vLLM's `return_token_ids`): shared out by
    text length, so the counts sum to the total but each is an estimate."""
    if len(texts) == 1:
        return [total]
    chars = sum(len(t) for t in texts)
    if chars == 0:
        return [total // len(texts) + (i < total % len(texts)) for i in range(len(texts))]
    out, used, seen = [], 0, 0
    for t in texts:
        seen += len(t)
        cumulative = round(total * seen / chars)
        out.append(cumulative - used)
        used = cumulative
    return out
