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

import io
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
from .errors import (
    ConfigError,
    ConnectionFailed,
    ConnectTimeout,
    DeadlineExceeded,
    InvalidResponse,
    ModelLoading,
    NotFound,
    PedroLLMError,
    RateLimited,
    ReadTimeout,
    RequestValidationError,
    ResponseTooLarge,
    StreamInterrupted,
    error_from_response,
)
from .redaction import redact_url
from .streaming import EventTooLarge, iter_events
from .types import InferenceResponse

log = logging.getLogger("pedrollm")

#: The default cap on one reply, and on one event of a stream, after decompression.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_READ_SIZE = 65536


def api_key_problem(key: str) -> str | None:
    """What makes a (stripped) key impossible to send in a header, without showing it."""
    for i, ch in enumerate(key):
        code = ord(ch)
        if code < 0x21 or 0x7F <= code <= 0xA0 or code > 0xFF:
            what = "a space" if ch in " \xa0" else (
                "a character outside Latin-1" if code > 0xFF else "a control character")
            return (f"contains {what} at position {i}, which an HTTP header cannot carry "
                    "(the key is not shown)")
    return None


def check_api_key(key: str | None) -> str | None:
    """Return the key with surrounding whitespace removed; ConfigError if it cannot be sent.

    A key read from a file or a secret mount often ends with a newline: that is
    stripped. Anything else a header cannot carry (control characters, characters
    outside Latin-1, spaces inside) is refused, naming the field and never the value.
    """
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigError(f"model.api_key: must be a string, got {type(key).__name__}")
    stripped = key.strip()
    problem = api_key_problem(stripped)
    if problem:
        raise ConfigError(f"model.api_key: {problem}")
    return stripped or None


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
    arrived yet, else :class:`StreamInterrupted`; the size cap gives
    :class:`ResponseTooLarge` and the deadline :class:`DeadlineExceeded`. Their
    ``partial`` is empty here: the reader knows what it assembled and attaches that.
    Always closed after use.
    """

    def __init__(self, response: requests.Response, url: str, read_timeout: float, *,
                 max_bytes: int = MAX_RESPONSE_BYTES, until: float | None = None,
                 deadline: float | None = None) -> None:
        self.response = response
        self.url = url
        self.read_timeout = read_timeout
        self.max_bytes = max_bytes
        self.until = until
        self.deadline = deadline
        self.ndjson = "ndjson" in response.headers.get("Content-Type", "")
        self.events = 0
        self.received = 0

    def _bytes(self) -> Iterator[bytes]:
        """The body's bytes as they arrive, counted against the cap and the deadline."""
        for data in _arriving_bytes(self.response):
            self.received += len(data)
            if self.received > self.max_bytes:
                raise ResponseTooLarge(
                    f"the stream from {self.url} passed the size cap of {self.max_bytes} "
                    "bytes (max_response_bytes)", InferenceResponse())
            if self.until is not None and time.monotonic() > self.until:
                raise DeadlineExceeded(
                    f"the stream from {self.url} passed its deadline of {self.deadline:g}s",
                    InferenceResponse())
            yield data

    def __iter__(self) -> Iterator[str]:
        try:
            for data in iter_events(self._bytes(), ndjson=self.ndjson,
                                    max_event_bytes=self.max_bytes):
                self.events += 1
                yield data
        except EventTooLarge as exc:
            raise ResponseTooLarge(f"{exc} from {self.url} (max_response_bytes)",
                                   InferenceResponse()) from exc
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
        read_timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        api_key = check_api_key(api_key)
        self.base_url = base_url.rstrip("/")
        self._shown_base = redact_url(self.base_url)
        self._secret = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) \
                or max_response_bytes < 1:
            raise ConfigError(f"model.max_response_bytes: must be a positive integer, "
                              f"got {max_response_bytes!r}")
        self.max_response_bytes = max_response_bytes
        _check_deadline("model.deadline", deadline)
        self.deadline = deadline
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
        key = "***" if self._secret else None
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
              headers: Mapping[str, str] | None,
              timeout: tuple[float, float]) -> requests.Response:
        """Send one request the way the session asks for; the body is read by the caller.

        Always streamed from requests' side, so the size cap and the deadline apply
        while the body arrives.
        """
        if self._own_session and data is None and not headers and not self._session.cookies:
            return self._session.send(self._prepared(method, url, json_body), stream=True,
                                      timeout=timeout)
        merged = dict(self._headers)
        if not self._own_session and not str(
                self._session.headers.get("User-Agent", "")).startswith("python-requests"):
            del merged["User-Agent"]  # the caller chose one on their session
        merged.update(headers or {})
        return self._session.request(method, url, json=json_body, data=data,
                                     headers=merged, stream=True, timeout=timeout)

    def _attempt(self, method: str, url: str, *, json_body: Any, data: bytes | None,
                 headers: Mapping[str, str] | None, stream: bool,
                 timeout: tuple[float, float], check: bool,
                 until: float | None) -> requests.Response:
        """Send once; map transport failures (and, with ``check``, HTTP errors).

        Unless ``stream``, the body is read here, within the size cap and deadline.
        """
        shown = url.replace(self.base_url, self._shown_base, 1)
        try:
            resp = self._send(method, url, json_body=json_body, data=data, headers=headers,
                              timeout=timeout)
        except requests.exceptions.InvalidJSONError as exc:
            raise RequestValidationError(
                "body", f"cannot be sent as JSON: {self._scrub(str(exc))}") from None
        except (requests.exceptions.InvalidHeader, UnicodeError) as exc:
            # Nothing was sent: a header (the API key, a caller's header) cannot be
            # encoded. Not retried, and the value is not shown.
            raise RequestValidationError(
                "headers", f"a header cannot be sent ({type(exc).__name__}); "
                "header values must be Latin-1 text without control characters") from None
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectTimeout(
                f"could not connect to {shown} within {timeout[0]:g}s"
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise ReadTimeout(
                f"{shown} sent nothing for {timeout[1]:g}s (read timeout)"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(
                f"could not reach {shown}: {self._scrub(_reason(exc))}") from exc
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(
                f"request to {shown} failed: {self._scrub(_reason(exc))}") from exc
        if check and resp.status_code >= 400:
            try:
                text = _decode_text(self._read_body(resp, shown, until), resp.encoding)
            except (ConnectionFailed, ReadTimeout):
                text = ""
            finally:
                resp.close()
            raise error_from_response(resp.status_code, text, resp.headers, shown)
        if not stream:
            body = self._read_body(resp, shown, until)
            # The connection went back to the pool once the body was read; the
            # response now serves the bytes read (decompressed) from memory.
            resp.raw = io.BytesIO(body)
        return resp

    def _read_body(self, resp: requests.Response, shown: str, until: float | None) -> bytes:
        """Read a whole body, decompressed, within the size cap and the deadline."""
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in resp.raw.stream(_READ_SIZE, decode_content=True):
                total += len(chunk)
                if total > self.max_response_bytes:
                    resp.close()
                    raise ResponseTooLarge(
                        f"the reply from {shown} passed the size cap of "
                        f"{self.max_response_bytes} bytes (max_response_bytes)")
                if until is not None and time.monotonic() > until:
                    resp.close()
                    raise DeadlineExceeded(f"the reply from {shown} passed its deadline")
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            resp.close()
            if _is_read_timeout(exc):
                raise ReadTimeout(f"the reply from {shown} stopped arriving "
                                  f"(read timeout)") from exc
            raise ConnectionFailed(
                f"the reply from {shown} broke off: {_reason(exc)}") from exc
        return b"".join(chunks)

    def _scrub(self, text: str) -> str:
        """Hide the API key in a message from a library, whatever quoted it."""
        return text.replace(self._secret, "***") if self._secret else text

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
        deadline: float | None = None,
    ) -> requests.Response:
        """Send a request with the retry policy and return the response.

        ``json_body`` is sent as JSON, ``data`` as raw bytes. With ``check`` (the
        default) an HTTP error status raises its :class:`~pedrollm.errors.HTTPError`
        subclass; with ``check=False`` any answer is returned as it came (transport
        failures still raise). Only what is safe to repeat is retried: refused
        connections, 503 while loading and 429 (read timeouts when the policy says).
        Unless ``stream``, the body is read before returning, within
        ``max_response_bytes``. ``deadline`` (seconds; default the client's) bounds the
        whole call, retries included: :class:`DeadlineExceeded` when it passes.
        """
        url = self.url(path)
        deadline = self.deadline if deadline is None else deadline
        _check_deadline("deadline", deadline)
        until = None if deadline is None else time.monotonic() + deadline
        waited = 0.0
        attempt = 0
        while True:
            timeout = (self.connect_timeout, read_timeout or self.read_timeout)
            if until is not None:
                left = until - time.monotonic()
                if left <= 0:
                    raise DeadlineExceeded(
                        f"{method} {self.shown_url(path)} passed its deadline of "
                        f"{deadline:g}s after {attempt} attempt(s)")
                timeout = (min(timeout[0], left), min(timeout[1], left))
            try:
                return self._attempt(method, url, json_body=json_body, data=data,
                                     headers=headers, stream=stream, timeout=timeout,
                                     check=check, until=until)
            except (ConnectionFailed, ModelLoading, RateLimited, ReadTimeout) as exc:
                if until is not None and time.monotonic() >= until:
                    raise DeadlineExceeded(
                        f"{method} {self.shown_url(path)} passed its deadline of "
                        f"{deadline:g}s: {exc}") from exc
                if not retry or not self._retryable(exc) or attempt >= self.retry.max_retries:
                    raise
                retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
                delay = self.retry.delay(attempt, retry_after)
                if waited + delay > self.retry.budget:
                    raise
                if until is not None and time.monotonic() + delay >= until:
                    raise DeadlineExceeded(
                        f"{method} {self.shown_url(path)} would pass its deadline of "
                        f"{deadline:g}s waiting {delay:.2f}s to retry after: {exc}") from exc
                log.info("retrying %s %s in %.2fs after: %s", method, path, delay, exc)
                self._sleep(delay)
                waited += delay
                attempt += 1

    def _retryable(self, exc: PedroLLMError) -> bool:
        """Read timeouts are only retried when the policy says so; the rest always are."""
        if isinstance(exc, ReadTimeout):
            return self.retry.retry_read_timeouts
        return True

    def get_json(self, path: str, *, retry: bool = True,
                 deadline: float | None = None) -> Any:
        """GET a path and decode its JSON body."""
        resp = self.request("GET", path, retry=retry, deadline=deadline)
        return decode_json(resp, self.shown_url(path))

    def post_json(self, path: str, body: Any, *, retry: bool = True,
                  deadline: float | None = None) -> Any:
        """POST a JSON body and decode the JSON reply."""
        resp = self.request("POST", path, json_body=body, retry=retry, deadline=deadline)
        return decode_json(resp, self.shown_url(path))

    def open_stream(self, path: str, body: Any, *, deadline: float | None = None
                    ) -> EventStream:
        """POST a JSON body for a streamed reply; iterate the result for its events.

        Retried like any request until the server answers; never once data flows.
        ``deadline`` (seconds; default the client's) bounds everything, the last
        event included.
        """
        deadline = self.deadline if deadline is None else deadline
        until = None if deadline is None else time.monotonic() + deadline
        resp = self.request("POST", path, json_body=body, stream=True, deadline=deadline)
        return EventStream(resp, self.shown_url(path), self.read_timeout,
                           max_bytes=self.max_response_bytes, until=until, deadline=deadline)

    def close(self) -> None:
        """Close pooled connections (of the caller's session too, when one was given)."""
        self._session.close()


def _check_deadline(field: str, deadline: float | None) -> None:
    """Refuse a deadline that is not a positive number of seconds."""
    if deadline is None:
        return
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) \
            or not 0 < deadline < float("inf"):
        raise ConfigError(f"{field}: must be a positive number of seconds, got {deadline!r}")


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
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidResponse(
            f"{url} answered {resp.status_code} with a body that is not JSON: {text[:200]!r}"
        ) from exc
    if (isinstance(data, dict) and len(data) == 1 and isinstance(data.get("error"), str)
            and data["error"].startswith(_UNEXPECTED_ENDPOINT)):
        # LM Studio answers an unknown route with 200 and this body (a long-open bug in
        # its tracker); it is what a 404 says everywhere else.
        raise NotFound(f"{data['error']} (answered {resp.status_code}; read as 404)",
                       status=404, body=data, url=url)
    return data


_UNEXPECTED_ENDPOINT = "Unexpected endpoint or method."


def _decode_text(body: bytes, encoding: str | None) -> str:
    """Body bytes as text in the declared charset, UTF-8 when it names none we know."""
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


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


__all__ = ["MAX_RESPONSE_BYTES", "EventStream", "HTTPClient", "RetryPolicy", "api_key_problem",
           "check_api_key",
           "decode_json", "settle_environment"]
