"""The PRM behind HTTP (`mmprm serve-prm`), for RL reward loops and remote search.

`POST /v1/score` takes items (a question, its images, candidate step lists)
and answers per-step scores; `GET /v1/models` names the PRM and says whether
its scores are bounded; `GET /health` is open and reports the counters.

What a request must get through, in order: the bearer token (401), the
concurrency limit (429 with Retry-After), the body's size and read time (413,
408), the schema (422 naming the field), the size limits (413 naming the
limit and its value), the images (400: unreadable, or a path outside the
served root), then the PRM (500 with its reason; the server keeps serving).
Requests that arrive together are scored in one batch (`batching`). Nothing
in a request is executed or unpickled: it is JSON, and images are decoded
by Pillow after their size is checked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import os
import secrets
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from mmprm.config import setting
from mmprm.limits import over_limit
from mmprm.prm.base import PRM
from mmprm.serve.batching import DynamicBatcher, ScoringFailed
from mmprm.serve.prm_client import API_KEY_ENV
from mmprm.types import Problem


@dataclass(frozen=True)
class PRMServeConfig:
    max_body_bytes: int = setting(64_000_000, "bytes of one request body")
    max_items: int = setting(64, "items (problems) in one request")
    max_candidates: int = setting(64, "candidates of one item")
    max_steps: int = setting(200, "steps of one candidate")
    max_step_chars: int = setting(8_000, "characters of one step")
    max_question_chars: int = setting(20_000, "characters of one question, its choices included")
    max_choices: int = setting(26, "choices of a multiple-choice item (letters A-Z)")
    max_images: int = setting(16, "images of one item")
    max_image_bytes: int = setting(20_000_000, "bytes of one image")
    max_image_pixels: int = setting(40_000_000, "pixels of one image (width x height)")
    max_request_pixels: int = setting(100_000_000, "pixels of all the images of one request")
    max_concurrent_requests: int = setting(64, "scoring requests in the server at once; more are answered 429")
    retry_after: int = setting(1, "seconds a client told 429 should wait (at least 1)")
    body_timeout: float = setting(30.0, "seconds a client may take to send its body (408 after)")
    batching: bool = setting(True, "score requests that arrive together in one batch")
    max_batch_candidates: int = setting(64, "candidates in one batch across requests")
    max_wait_ms: float = setting(2.0, "milliseconds a request waits for others to batch with")
    prm_batch_size: int = setting(64, "candidates in one forward pass of a local PRM")
    image_root: str | None = setting(None, "folder whose files requests may name as images (default: data URIs only)")

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if name == "max_wait_ms" and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
            if name != "max_wait_ms" and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.image_root is not None and not Path(self.image_root).is_dir():
            raise ValueError(f"image_root {self.image_root} is not a folder")


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    question: str
    images: list[str] = []
    choices: list[str] | None = None
    candidates: list[list[str]]


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    items: list[ScoreItem]


class Refused(Exception):
    """A request answered with `status` and `message` (and, for limits, the limit's name and value)."""

    def __init__(self, status: int, message: str, **detail):
        super().__init__(message)
        self.status, self.detail = status, detail


def create_prm_app(prm: PRM, cfg: PRMServeConfig = PRMServeConfig(), *, api_key: str | None = None,
                   model_name: str | None = None) -> Gate:
    """The ASGI app serving `prm`: the FastAPI app behind its Gate. `.batcher.stats` and
    `.counts` say what happened to every request."""
    name = model_name or prm.name
    batcher = DynamicBatcher(prm.score_many, max_batch_candidates=cfg.max_batch_candidates,
                             max_wait_s=cfg.max_wait_ms / 1000, enabled=cfg.batching)

    @asynccontextmanager
    async def lifespan(_app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="mmprm PRM server", lifespan=lifespan)

    @app.exception_handler(Refused)
    async def refused(_request, exc: Refused) -> JSONResponse:
        return error_response(exc.status, str(exc), **exc.detail)

    @app.exception_handler(RequestValidationError)
    async def malformed(_request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            where = first.get("loc", ("body", "?"))[-1]
            return error_response(400, f"body: not valid JSON ({first.get('msg')} at character {where})",
                                  param="body")
        field = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or "body"
        return error_response(422, f"{field}: {first.get('msg', 'invalid')}", param=field)

    @app.get("/health")
    async def health() -> JSONResponse:
        ok = batcher.running
        return JSONResponse(status_code=200 if ok else 503, content={
            "status": "ok" if ok else "the scoring worker has stopped", "model": name,
            **batcher.stats.to_dict(), **gate.counts})

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "mmprm", "kind": "prm",
                                            "bounded": prm.bounded}]}

    @app.post("/v1/score")
    async def score(req: ScoreRequest, request: Request) -> dict:
        if req.model is not None and req.model != name:
            raise Refused(400, f"model {req.model!r} is not served here; this server serves {name!r}")
        pixels = [0]
        items = [(problem_of(item, k, cfg, pixels), item.candidates) for k, item in enumerate(checked(req, cfg))]
        try:
            scores = await unless_client_leaves(batcher.score(items), request)
        except ScoringFailed as e:
            raise Refused(500, f"the PRM failed on this request: {e}") from None
        if scores is None:
            raise Refused(499, "the client closed the connection before its scores were ready")
        return {"object": "scores", "model": name, "bounded": prm.bounded, "scores": scores,
                "usage": {"items": len(items), "candidates": sum(len(c) for _, c in items),
                          "steps": sum(len(s) for _, c in items for s in c)}}

    gate = Gate(app, cfg, api_key=api_key)
    gate.batcher = batcher
    return gate


async def unless_client_leaves(scoring, request: Request):
    """The scores, or None once the client has disconnected (its request is then dropped
    from the batcher's queue, or its result discarded, and counted as abandoned)."""

    async def left() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    scored, watch = asyncio.ensure_future(scoring), asyncio.ensure_future(left())
    try:
        await asyncio.wait({scored, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not scored.done():
            scored.cancel()
    return scored.result() if not scored.cancelled() else None


def serve_prm(spec: str, host: str = "127.0.0.1", port: int = 8000, cfg: PRMServeConfig = PRMServeConfig(), *,
              api_key: str | None = None, model_name: str | None = None) -> None:
    """Serve the PRM built from `spec` until interrupted (`mmprm serve-prm`); the key
    defaults to $MMPRM_PRM_API_KEY."""
    import uvicorn

    from mmprm.prm.load import load_prm

    prm = load_prm(spec, batch_size=cfg.prm_batch_size)
    try:
        app = create_prm_app(prm, cfg, api_key=api_key or os.environ.get(API_KEY_ENV) or None, model_name=model_name)
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        prm.close()


# ---- checks -----------------------------------------------------------------

def checked(req: ScoreRequest, cfg: PRMServeConfig) -> list[ScoreItem]:
    """The request's items, or Refused(413) naming the first limit passed."""
    _limit("items in the request", len(req.items), cfg.max_items, "max_items")
    for k, item in enumerate(req.items):
        text = len(item.question) + sum(len(c) for c in item.choices or ())
        _limit(f"item {k}'s question length", text, cfg.max_question_chars, "max_question_chars")
        _limit(f"item {k}'s number of choices", len(item.choices or ()), cfg.max_choices, "max_choices")
        _limit(f"item {k}'s number of images", len(item.images), cfg.max_images, "max_images")
        _limit(f"item {k}'s number of candidates", len(item.candidates), cfg.max_candidates, "max_candidates")
        for c, steps in enumerate(item.candidates):
            _limit(f"item {k} candidate {c}'s number of steps", len(steps), cfg.max_steps, "max_steps")
            longest = max((len(s) for s in steps), default=0)
            _limit(f"item {k} candidate {c}'s longest step", longest, cfg.max_step_chars, "max_step_chars")
    return req.items


def problem_of(item: ScoreItem, k: int, cfg: PRMServeConfig, pixels: list[int]) -> Problem:
    """The item as a Problem for the PRM; `pixels[0]` adds up the request's image pixels."""
    images = [checked_image(ref, f"item {k} image {j}", cfg, pixels) for j, ref in enumerate(item.images)]
    return Problem(id=item.id or f"item-{k}", question=item.question, answer="", images=images, choices=item.choices)


def checked_image(ref: str, what: str, cfg: PRMServeConfig, pixels: list[int]) -> str:
    """A data URI (kept) or a path under the served root (made absolute), its bytes and pixels
    within limits, in one of the plain raster formats (Pillow's other readers, PostScript among
    them, never see a request's bytes)."""
    from PIL import Image

    if ref.startswith("data:"):
        header, _, payload = ref.partition(",")
        if not header.startswith("data:image/") or not header.endswith(";base64"):
            raise Refused(400, f"{what}: a data URI must be 'data:image/...;base64,...'")
        _limit(f"{what}'s size in bytes", len(payload) * 3 // 4, cfg.max_image_bytes, "max_image_bytes")
        try:
            source = io.BytesIO(base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            raise Refused(400, f"{what}: the data URI is not valid base64") from None
        kept = ref
    else:
        path = _served_path(ref, what, cfg)
        _limit(f"{what}'s size in bytes", path.stat().st_size, cfg.max_image_bytes, "max_image_bytes")
        source, kept = path, str(path)
    try:
        with Image.open(source, formats=IMAGE_FORMATS) as img:  # the header only: pixels before decoding
            _limit(f"{what}'s pixel count", img.width * img.height, cfg.max_image_pixels, "max_image_pixels")
            pixels[0] += img.width * img.height
            _limit("the request's total pixel count", pixels[0], cfg.max_request_pixels, "max_request_pixels")
            img.verify()
    except Refused:
        raise
    except Exception as e:  # Pillow's errors for a file that is not an image it can read, bombs included
        raise Refused(400, f"{what} cannot be read as an image: {type(e).__name__}: {e}") from None
    return kept


def _served_path(ref: str, what: str, cfg: PRMServeConfig) -> Path:
    if cfg.image_root is None:
        raise Refused(400, f"{what}: this server takes images as data URIs only (it was started without "
                           f"--image-root), got {ref[:60]!r}")
    root = Path(cfg.image_root).resolve()
    try:
        path = (root / ref).resolve()
        inside = not os.path.isabs(ref) and path.is_relative_to(root)
        found = inside and path.is_file()
    except (OSError, ValueError, RuntimeError) as e:  # a NUL byte, a name too long, a symlink loop
        raise Refused(400, f"{what}: image path {ref[:200]!r} cannot be resolved: {type(e).__name__}") from None
    if not inside:
        raise Refused(400, f"{what}: image path {ref[:200]!r} is outside the served image root")
    if not found:
        raise Refused(400, f"{what}: image {ref[:200]!r} not found under the served image root")
    return path


IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


def _limit(kind: str, size: int, limit: int, name: str) -> None:
    if reason := over_limit(kind, size, limit, name):
        raise Refused(413, reason, limit=name, value=limit)


def error_response(status: int, message: str, headers: dict | None = None, **detail) -> JSONResponse:
    kind = {401: "authentication_error", 429: "rate_limit_error", 500: "server_error"}.get(status,
                                                                                         "invalid_request_error")
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, **detail}},
                        headers=headers)


# ---- before the app: key, concurrency, body -------------------------------------

# A body refused before it was read whole leaves the rest of it on the connection, where
# it would be parsed as the next request: the connection is closed after the answer.
UNREAD_BODY = {"Connection": "close"}

class Gate:
    """ASGI middleware in front of the app: checks the bearer token, bounds the requests
    inside, and reads each body whole (bounded in size and time) before the app sees it,
    so a slow or oversized upload never reaches the PRM."""

    def __init__(self, app: FastAPI, cfg: PRMServeConfig, *, api_key: str | None):
        self.app, self.cfg, self.api_key = app, cfg, api_key
        self.batcher: DynamicBatcher | None = None
        self.inside = 0
        self.counts = {"busy_429": 0, "too_large_413": 0, "slow_408": 0, "unauthorized_401": 0, "left_early": 0}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":  # no websocket routes: refused before any check could be skipped
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        if self.api_key and scope["path"] != "/health" and not self._authorized(scope):
            self.counts["unauthorized_401"] += 1
            return await error_response(401, "a valid API key is required: send 'Authorization: Bearer KEY'",
                                        headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if self.inside >= self.cfg.max_concurrent_requests:
            self.counts["busy_429"] += 1
            return await error_response(
                429, f"the server is at its limit of {self.cfg.max_concurrent_requests} requests at once "
                     f"(--max-concurrent-requests); retry after {self.cfg.retry_after} s",
                headers={"Retry-After": str(self.cfg.retry_after)}, limit="max_concurrent_requests",
                value=self.cfg.max_concurrent_requests)(scope, receive, send)
        self.inside += 1
        try:
            await self._read_then_run(scope, receive, send)
        finally:
            self.inside -= 1

    async def _read_then_run(self, scope, receive, send) -> None:
        limit = self.cfg.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._too_large(scope, receive, send, int(declared))
        body = bytearray()
        try:
            async with asyncio.timeout(self.cfg.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        self.counts["left_early"] += 1
                        return
                    body += message.get("body", b"")
                    if len(body) > limit:
                        return await self._too_large(scope, receive, send, len(body))
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            self.counts["slow_408"] += 1
            return await error_response(408, f"the request body did not arrive within {self.cfg.body_timeout:g} s "
                                             "(--body-timeout)", headers=UNREAD_BODY, limit="body_timeout",
                                        value=self.cfg.body_timeout)(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send, size: int) -> None:
        self.counts["too_large_413"] += 1
        await error_response(413, over_limit("the request body in bytes", size, self.cfg.max_body_bytes,
                                             "max_body_bytes"), headers=UNREAD_BODY, limit="max_body_bytes",
                             value=self.cfg.max_body_bytes)(scope, receive, send)

    def _authorized(self, scope) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), self.api_key.encode())
