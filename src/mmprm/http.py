"""POSTing JSON to a service that may be busy, restarting or failing.

One retry discipline for every client in the project (the policy backend,
the PRM clients): 408, 429 and the listed 5xx statuses, timeouts and dropped
connections are retried with exponential backoff and jitter, honouring
Retry-After; any other 4xx means our request is wrong and fails at once; a
200 whose body the caller's `check` rejects is retried as malformed. What
still fails is raised naming the URL and the last reason.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

MAX_DELAY = 60.0  # seconds: the longest wait between two tries, Retry-After included


class ServiceError(RuntimeError):
    """The server answered, but not with something usable."""


class ServiceUnavailable(ServiceError):
    """The server could not be reached, or stayed busy or failing, after every retry."""


class MalformedResponse(ServiceError):
    """The server kept answering 200 with a body that is not what was asked for."""


class _Retry(Exception):
    def __init__(self, reason: str, *, malformed: bool = False, delay: float | None = None):
        super().__init__(reason)
        self.malformed, self.delay = malformed, delay


@dataclass(frozen=True)
class Retrying:
    """How a client retries: `what` names the service in errors ("policy server");
    `retry_statuses` are the 5xx answers worth another try (None: all of them; a
    service whose 500 means "this request failed" leaves 500 out)."""

    what: str
    max_retries: int = 5
    backoff: float = 0.5
    retry_statuses: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {self.max_retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be at least 0, got {self.backoff}")

    def post(self, client: httpx.Client, url: str, body: dict,
             check: Callable[[object], str | None] = lambda _: None) -> dict:
        """POST `body` until a usable answer; `check(data)` says what is wrong with a 200 body, or None."""
        return self._sync(client, lambda: client.post(url, json=body), url, check)

    def get(self, client: httpx.Client, url: str, check: Callable[[object], str | None] = lambda _: None) -> dict:
        return self._sync(client, lambda: client.get(url), url, check)

    def _sync(self, client: httpx.Client, send: Callable[[], httpx.Response], url: str,
              check: Callable[[object], str | None]) -> dict:
        failure: _Retry | None = None
        for attempt in range(self.max_retries + 1):
            if failure is not None:
                time.sleep(self._wait(failure, attempt))
            try:
                with _transport_errors(client):
                    resp = send()
                return self._read(resp, url, check)
            except _Retry as e:
                failure = e
        raise self._give_up(url, failure)

    async def apost(self, client: httpx.AsyncClient, url: str, body: dict,
                    check: Callable[[object], str | None] = lambda _: None) -> dict:
        """`post` for an async client."""
        failure: _Retry | None = None
        for attempt in range(self.max_retries + 1):
            if failure is not None:
                await asyncio.sleep(self._wait(failure, attempt))
            try:
                with _transport_errors(client):
                    resp = await client.post(url, json=body)
                return self._read(resp, url, check)
            except _Retry as e:
                failure = e
        raise self._give_up(url, failure)

    def _read(self, resp: httpx.Response, url: str, check: Callable[[object], str | None]) -> dict:
        status = resp.status_code
        server_side = status >= 500 if self.retry_statuses is None else status in self.retry_statuses
        if status in (408, 429) or server_side:
            delay = retry_after(resp.headers.get("retry-after"))
            raise _Retry(f"HTTP {resp.status_code}: {snippet(resp.text)}", delay=delay)
        if resp.status_code >= 400:  # our request is wrong (or, for 5xx not listed, failed for good)
            raise ServiceError(f"{url} rejected the request with HTTP {resp.status_code}: {snippet(resp.text)}")
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retry(f"body is not JSON: {snippet(resp.text)!r}", malformed=True) from None
        if problem := check(data):
            raise _Retry(f"{problem}: {snippet(resp.text)!r}", malformed=True)
        return data

    def _wait(self, failure: _Retry, attempt: int) -> float:
        """Exponential backoff with jitter, so many clients do not retry in step; never
        sooner than the server's Retry-After, and spread a little past it for the same reason."""
        backoff = min(MAX_DELAY, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        if failure.delay is None:
            return backoff
        return min(MAX_DELAY, max(failure.delay * random.uniform(1.0, 1.25), backoff))

    def _give_up(self, url: str, failure: _Retry | None) -> ServiceError:
        attempts = self.max_retries + 1
        what = f"after {attempts} attempt{'s' if attempts > 1 else ''}: {failure}"
        if failure is not None and failure.malformed:
            return MalformedResponse(f"{url} kept answering with a malformed body {what}")
        return ServiceUnavailable(f"{self.what} {url} is unavailable {what}")


@contextmanager
def _transport_errors(client: httpx.Client | httpx.AsyncClient) -> Iterator[None]:
    """Timeouts and failed connections as retryable failures."""
    try:
        yield
    except httpx.TimeoutException as e:
        raise _Retry(f"no answer within {_timeout(client)} ({type(e).__name__})") from None
    except httpx.TransportError as e:  # refused, reset, dropped mid-response
        raise _Retry(f"{type(e).__name__}: {str(e) or 'connection failed'}") from None


def _timeout(client: httpx.Client | httpx.AsyncClient) -> str:
    read = client.timeout.read
    return f"{read:g} s" if read is not None else "the timeout"


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(MAX_DELAY, max(0.0, seconds))


def snippet(text: str, limit: int = 300) -> str:
    """A server's answer shortened to one line for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
