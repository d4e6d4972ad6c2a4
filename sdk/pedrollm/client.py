"""The HTTP transport every backend shares: :class:`HTTPClient`.

It knows nothing about chat. It owns one :class:`requests.Session` (keep-alive),
separate connect and read timeouts, retries with exponential backoff and jitter for
what is safe to retry (connection refused, 503 while the model loads, 429), the
mapping of transport failures and HTTP error statuses to
:class:`~pedrollm.errors.PedroLLMError` subclasses, and the framing of streamed
replies (SSE or NDJSON) into events. Backends build bodies, call it, and read what
comes back; it never calls back into a backend.

Its public raw methods (:meth:`HTTPClient.request`, :meth:`~HTTPClient.get_json`,
:meth:`~HTTPClient.post_json`, :meth:`~HTTPClient.open_stream`) are the way to send
a request the SDK has no method for, with the same timeouts, retries and errors.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from ._version import __version__
from .config import redact_url
from .errors import (
    ConnectionFailed,
    ConnectTimeout,
    InvalidResponse,
    ModelLoading,
    PedroLLMError,
    RateLimited,
    ReadTimeout,
    StreamInterrupted,
    error_from_response,
)
from .streaming import iter_events
from .types import InferenceResponse

log = logging.getLogger("pedrollm")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry: attempts, total waiting budget in seconds, backoff shape."""

    max_retries: int = 3
    budget: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_read_timeouts: bool = False

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the wait before retry number ``attempt`` (0-based), with jitter."""
        if retry_after is not None:
            return float(retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** attempt))
        # Half fixed, half random: spreads clients out without ever waiting zero.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class EventStream:
    """An open streamed reply: iterate it for each event's data (SSE or NDJSON).

    A transport failure while reading becomes :class:`ReadTimeout` when nothing had
    arrived yet, else :class:`StreamInterrupted` (with an empty ``partial``: the
    reader knows what it assembled and attaches that). Always closed after use.
    """

    def __init__(self, response: requests.Response, url: str, read_timeout: float) -> None:
        self.response = response
        self.url = url
        self.read_timeout = read_timeout
        self.ndjson = "ndjson" in response.headers.get("Content-Type", "")
        self.events = 0

    def __iter__(self) -> Iterator[str]:
        try:
            for data in iter_events(_arriving_bytes(self.response), ndjson=self.ndjson):
                self.events += 1
                yield data
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                OSError) as exc:
            if self.events == 0 and _is_read_timeout(exc):
                raise ReadTimeout(
                    f"{self.url} sent no tokens for {self.read_timeout:g}s (read timeout)"
                ) from exc
            raise StreamInterrupted(
                f"the stream from {self.url} broke off: {_reason(exc)}", InferenceResponse()
            ) from exc
        finally:
            self.close()

    def close(self) -> None:
        """Release the connection."""
        self.response.close()


class HTTPClient:
    """The transport to one server: base URL, session, timeouts, retries, errors.

    A session the caller passes is used through ``Session.request`` on every call, so
    everything requests honours on it applies (``request()`` overrides, auth, hooks,
    cookies, proxies, verify/cert, adapters, ``trust_env``). A session the client
    creates itself is private and takes a faster path with the same result: the
    environment is read once, and each URL's request is prepared once and copied.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._shown_base = redact_url(self.base_url)
        self._has_key = bool(api_key)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            settle_environment(session, self.base_url)
        self._session = session
        self._templates: dict[tuple[str, str], requests.PreparedRequest] = {}
        # The caller's session keeps its own headers; ours go with each request.
        self._headers: dict[str, str] = {"User-Agent": f"pedrollm/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._headers.update(headers or {})
        if self._own_session:
            self._session.headers.update(self._headers)

    def __repr__(self) -> str:
        key = "***" if self._has_key else None
        return f"HTTPClient(base_url={self._shown_base!r}, api_key={key!r})"

    @property
    def shown_base_url(self) -> str:
        """The base URL as it may appear in messages (a password in it hidden)."""
        return self._shown_base

    def url(self, path: str) -> str:
        """Return the absolute URL of a server path."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def shown_url(self, path: str) -> str:
        """Return the URL of a path as it may appear in messages."""
        return self._shown_base + (path if path.startswith("/") else "/" + path)

    # -- one attempt ---------------------------------------------------------------

    def _prepared(self, method: str, url: str, json_body: Any) -> requests.PreparedRequest:
        """A copy of the request prepared once per (method, URL), with this body.

        ``Session.request`` merges the session's settings into every request afresh,
        most of a local request's client-side cost. Our own session never changes
        after construction except its cookie jar (a proxy in front of the server may
        set cookies), so templates are only used while the jar is empty.
        """
        template = self._templates.get((method, url))
        if template is None:
            template = self._session.prepare_request(requests.Request(method, url))
            self._templates[(method, url)] = template
        prepared = template.copy()
        if json_body is not None:
            prepared.prepare_body(data=None, files=None, json=json_body)
        return prepared

    def _send(self, method: str, url: str, *, json_body: Any, data: bytes | None,
              headers: Mapping[str, str] | None, stream: bool,
              timeout: tuple[float, float]) -> requests.Response:
        """Send one request the way the session asks for."""
        if self._own_session and data is None and not headers and not self._session.cookies:
            return self._session.send(self._prepared(method, url, json_body), stream=stream,
                                      timeout=timeout)
        merged = dict(self._headers)
        if not self._own_session and not str(
                self._session.headers.get("User-Agent", "")).startswith("python-requests"):
            del merged["User-Agent"]  # the caller chose one on their session
        merged.update(headers or {})
        return self._session.request(method, url, json=json_body, data=data,
                                     headers=merged, stream=stream, timeout=timeout)

    def _attempt(self, method: str, url: str, *, json_body: Any, data: bytes | None,
                 headers: Mapping[str, str] | None, stream: bool,
                 timeout: tuple[float, float], check: bool) -> requests.Response:
        """Send once; map transport failures (and, with ``check``, HTTP errors)."""
        shown = url.replace(self.base_url, self._shown_base, 1)
        try:
            resp = self._send(method, url, json_body=json_body, data=data, headers=headers,
                              stream=stream, timeout=timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectTimeout(
                f"could not connect to {shown} within {timeout[0]:g}s"
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise ReadTimeout(
                f"{shown} sent nothing for {timeout[1]:g}s (read timeout)"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(f"could not reach {shown}: {_reason(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(f"request to {shown} failed: {_reason(exc)}") from exc
        if check and resp.status_code >= 400:
            try:
                text = resp.text
            except requests.exceptions.RequestException:
                text = ""
            finally:
                resp.close()
            raise error_from_response(resp.status_code, text, resp.headers, shown)
        return resp

    # -- public raw requests -------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        read_timeout: float | None = None,
        check: bool = True,
    ) -> requests.Response:
        """Send a request with the retry policy and return the response.

        ``json_body`` is sent as JSON, ``data`` as raw bytes. With ``check`` (the
        default) an HTTP error status raises its :class:`~pedrollm.errors.HTTPError`
        subclass; with ``check=False`` any answer is returned as it came (transport
        failures still raise). Only what is safe to repeat is retried: refused
        connections, 503 while loading and 429 (read timeouts when the policy says).
        """
        url = self.url(path)
        timeout = (self.connect_timeout, read_timeout or self.read_timeout)
        waited = 0.0
        attempt = 0
        while True:
            try:
                return self._attempt(method, url, json_body=json_body, data=data,
                                     headers=headers, stream=stream, timeout=timeout,
                                     check=check)
            except (ConnectionFailed, ModelLoading, RateLimited, ReadTimeout) as exc:
                if not retry or not self._retryable(exc) or attempt >= self.retry.max_retries:
                    raise
                retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
                delay = self.retry.delay(attempt, retry_after)
                if waited + delay > self.retry.budget:
                    raise
                log.info("retrying %s %s in %.2fs after: %s", method, path, delay, exc)
                self._sleep(delay)
                waited += delay
                attempt += 1

    def _retryable(self, exc: PedroLLMError) -> bool:
        """Read timeouts are only retried when the policy says so; the rest always are."""
        if isinstance(exc, ReadTimeout):
            return self.retry.retry_read_timeouts
        return True

    def get_json(self, path: str, *, retry: bool = True) -> Any:
        """GET a path and decode its JSON body."""
        resp = self.request("GET", path, retry=retry)
        return decode_json(resp, self.shown_url(path))

    def post_json(self, path: str, body: Any, *, retry: bool = True) -> Any:
        """POST a JSON body and decode the JSON reply."""
        resp = self.request("POST", path, json_body=body, retry=retry)
        return decode_json(resp, self.shown_url(path))

    def open_stream(self, path: str, body: Any) -> EventStream:
        """POST a JSON body for a streamed reply; iterate the result for its events.

        Retried like any request until the server answers; never once data flows.
        """
        resp = self.request("POST", path, json_body=body, stream=True)
        return EventStream(resp, self.shown_url(path), self.read_timeout)

    def close(self) -> None:
        """Close pooled connections (of the caller's session too, when one was given)."""
        self._session.close()


def settle_environment(session: requests.Session, url: str) -> None:
    """Read proxies, CA bundle and .netrc for ``url`` from the environment once.

    With ``trust_env`` on, requests re-reads them on every request (walking
    ``os.environ`` and looking for ``~/.netrc``), a fifth of a local request's CPU time;
    the client only ever talks to one server, so the answer cannot change per request.
    """
    env = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(env["proxies"])
    session.verify = env["verify"]
    session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False


def _arriving_bytes(resp: requests.Response) -> Iterator[bytes]:
    """Yield a streamed body's bytes as they arrive, chunked transfer or not.

    ``iter_content(None)`` waits for the whole body when the server does not use
    chunked encoding (HTTP/1.0 servers, ``Connection: close``), which would hold a
    stream back until it ended; ``read1`` returns whatever has arrived.
    """
    raw = resp.raw
    read1 = getattr(raw, "read1", None)
    if read1 is None:
        yield from resp.iter_content(chunk_size=None)
        return
    while True:
        data = read1(65536, decode_content=True)
        if not data:
            return
        yield data


def decode_json(resp: requests.Response, url: str) -> Any:
    """Decode a response body as JSON, or raise InvalidResponse saying what came."""
    try:
        text = resp.text
    except requests.exceptions.RequestException as exc:
        raise ConnectionFailed(f"the reply from {url} broke off: {_reason(exc)}") from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidResponse(
            f"{url} answered {resp.status_code} with a body that is not JSON: {text[:200]!r}"
        ) from exc


def _is_read_timeout(exc: BaseException) -> bool:
    """True when a requests error was caused by a socket read timeout."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.ReadTimeout) or "timed out" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    """Return a short reason for a transport error, without URLs' query strings."""
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text:
        return "timed out"
    return text[:300] if text else type(exc).__name__


__all__ = ["EventStream", "HTTPClient", "RetryPolicy", "decode_json", "settle_environment"]
