"""An OpenAI-compatible server for a local HF policy.

It lets the `openai:` backend, and any OpenAI client, run against the tiny
policy on a laptop or in a test, where vLLM cannot serve a VLM; production
serves real models with vLLM. It speaks the subset mmprm sends, including
vLLM's extensions (`top_k`, `continue_final_message`, `stop_reason`).
Concurrent requests decode together, as vLLM's do: one thread owns the
model and a continuous batcher (`mmprm.policy.engine`), and a request joins
its batch as soon as rows free, so a client that keeps many requests in
flight (the annotation runner's stream) keeps the batch full.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from mmprm.io import load_image
from mmprm.policy.base import SamplingParams
from mmprm.policy.engine import GeneratedText, Job
from mmprm.policy.hf import HFPolicy, all_samples


class _Sampling(BaseModel):
    """The sampling fields of both endpoints; unknown fields are ignored, as OpenAI clients send many."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False

    def params(self) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=max(0, self.top_k),  # vLLM spells "off" as -1
            max_tokens=self.max_tokens or self.max_completion_tokens or SamplingParams.max_tokens,
            stop=stop,
            seed=self.seed,
        )


class ChatRequest(_Sampling):
    messages: list[dict]
    continue_final_message: bool = False
    add_generation_prompt: bool = True


class CompletionRequest(_Sampling):
    prompt: str


class BadRequest(ValueError):
    """A request we will not run, with the reason sent back as HTTP 400."""


def create_app(policy: str | Path | HFPolicy, *, model_name: str | None = None) -> FastAPI:
    """A FastAPI app serving `policy` (an HFPolicy or the path of a checkpoint).

    `model_name` is the name clients must send (default: the path, as vLLM does).
    `app.state.stats` counts requests answered and images received, and the
    most rows that decoded together (`peak_rows`).
    """
    if not isinstance(policy, HFPolicy):
        policy = HFPolicy(policy)
    name = model_name or policy.path
    stats = {"requests": 0, "images": 0, "peak_rows": 0}
    decoder = DecodingWorker(policy, stats)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        decoder.close()

    app = FastAPI(title="mmprm policy server", lifespan=lifespan)
    app.state.stats = stats

    @app.exception_handler(BadRequest)
    async def bad_request(_request, exc: BadRequest) -> JSONResponse:
        return _error(400, str(exc))

    def check(req: _Sampling) -> None:
        if req.model is not None and req.model != name:
            raise BadRequest(f"model {req.model!r} is not served here; this server serves {name!r}")
        if req.stream:
            raise BadRequest("streaming is not supported by this server")
        if req.n < 1:
            raise BadRequest(f"n must be at least 1, got {req.n}")

    async def generate(make_job) -> list[GeneratedText]:
        """The completions of one prompt, decoded with whatever else is in flight."""
        try:
            return await asyncio.wrap_future(decoder.submit(make_job()))
        except ValueError as e:  # the policy's word on a request it cannot run (bad params, images to a text model)
            raise BadRequest(str(e)) from None

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": name, **app.state.stats}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "mmprm"}]}

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest) -> dict:
        check(req)
        if req.continue_final_message == req.add_generation_prompt:
            raise BadRequest("set exactly one of continue_final_message and add_generation_prompt")
        if req.continue_final_message and (not req.messages or req.messages[-1].get("role") != "assistant"):
            raise BadRequest("continue_final_message needs a final assistant message")
        messages = [_our_message(m, app.state.stats) for m in req.messages]
        cont, params = req.continue_final_message, req.params()
        outs = await generate(lambda: policy.job(None, messages, params, params.seed, continue_final_message=cont))
        app.state.stats["requests"] += 1
        choices = [
            {"index": i, "message": {"role": "assistant", "content": g.text}, **_finish(g)} for i, g in enumerate(outs)
        ]
        return _response("chat.completion", name, choices, outs)

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest) -> dict:
        check(req)
        params = req.params()
        outs = await generate(lambda: policy.text_job(None, req.prompt, params))
        app.state.stats["requests"] += 1
        choices = [{"index": i, "text": g.text, **_finish(g)} for i, g in enumerate(outs)]
        return _response("text_completion", name, choices, outs)

    return app


class DecodingWorker:
    """The model's one thread: submitted jobs join one continuously batched decode.

    If a decoding step raises (a prompt the processor cannot take), the jobs
    in flight are decoded again one at a time, so only the one that raises
    alone fails, as the PRM server's batcher does. A request whose caller gave
    up (its future cancelled) is dropped. The worker owns the policy's model
    while it runs: nothing else should decode with the same `HFPolicy`.
    """

    def __init__(self, policy: HFPolicy, stats: dict, *, start: bool = True):
        self.policy, self.stats = policy, stats
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="policy decoder", daemon=True)
        if start:
            self.thread.start()

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        self.inbox.put((job, future))
        return future

    def close(self) -> None:
        """Stop after the current step; what is still queued or decoding fails."""
        self.inbox.put(None)
        if self.thread.is_alive():
            self.thread.join(timeout=30)

    def _serve(self) -> None:
        engine, futures = self.policy.batcher(), {}
        while True:
            wait = engine.idle  # block for work only when there is nothing to decode
            while True:
                try:
                    item = self.inbox.get(block=wait)
                except queue.Empty:
                    break
                if item is None:
                    _fail([f for _, f in futures.values()], RuntimeError("the policy server is shutting down"))
                    return
                job, future = item
                if future.set_running_or_notify_cancel():  # False: cancelled while queued
                    engine.add(job)
                    futures[id(job)] = (job, future)
                wait = False
            if engine.idle:
                continue
            try:
                finished = engine.step()
            except Exception:
                in_flight = list(futures.values())
                engine, futures = self.policy.batcher(), {}
                for job, future in in_flight:
                    self._alone(job, future)
                continue
            self.stats["peak_rows"] = max(self.stats["peak_rows"], engine.peak_rows)
            for job in finished:
                future = futures.pop(id(job))[1]
                if not future.done():
                    future.set_result(all_samples(job))

    def _alone(self, job: Job, future: Future) -> None:
        fresh = Job(job.key, job.text, job.images, job.params, job.seeds)
        try:
            result = self.policy.run_jobs([fresh])[0]
        except Exception as e:
            _fail([future], e)
        else:
            if not future.done():
                future.set_result(result)


def _fail(futures: list[Future], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


def serve(path: str | Path, host: str = "127.0.0.1", port: int = 8000, *, model_name: str | None = None) -> None:
    """Serve the policy at `path` until interrupted (`mmprm serve-policy`)."""
    import uvicorn

    uvicorn.run(create_app(path, model_name=model_name), host=host, port=port)


def _our_message(message: dict, stats: dict) -> dict:
    """An OpenAI chat message as mmprm's: `image_url` parts become `{"type": "image", "image": DATA_URI}`."""
    role, content = message.get("role"), message.get("content")
    if role not in ("system", "user", "assistant"):
        raise BadRequest(f"unsupported message role {role!r}")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise BadRequest(f"message content must be a string or a list of parts, got {type(content).__name__}")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            _check_image(url)
            stats["images"] += 1
            parts.append({"type": "image", "image": url})
        else:
            raise BadRequest(f"unsupported content part type {kind!r} (text, image_url)")
    return {"role": role, "content": parts}


def _check_image(url: object) -> None:
    """Only inline images (the server must not fetch URLs or open its own files for a client),
    and ones that open: a bad image is refused here, before it can join and fail a shared batch."""
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise BadRequest(f"images must be base64 data URIs (data:image/...;base64,...), got {str(url)[:60]!r}")
    try:
        load_image(url)
    except ValueError as e:
        raise BadRequest(str(e)) from None


def _finish(g: GeneratedText) -> dict:
    return {"finish_reason": g.finish_reason, "stop_reason": g.stop_reason}


def _response(kind: str, model: str, choices: list[dict], outs: list[GeneratedText]) -> dict:
    prompt = outs[0].prompt_tokens if outs else 0
    completion = sum(g.completion_tokens for g in outs)
    return {
        "id": f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": "invalid_request_error"}})
