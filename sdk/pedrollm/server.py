"""The generic OpenAI-compatible client every backend talks through.

One :class:`requests.Session` per client (keep-alive), separate connect and read
timeouts, retries with exponential backoff and jitter for what is safe to retry
(connection refused, 503 while the model loads, 429), and error mapping so only
:class:`~pedrollm.errors.PedroLLMError` subclasses leave it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from ._version import __version__
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
from .redaction import redact_url
from .reply import (
    RawReply,
    StreamTextParser,
    TextToolParser,
    build_response,
    raw_reply_from_completion,
)
from .streaming import StreamAccumulator, StreamError, iter_events
from .types import InferenceRequest, InferenceResponse, Message, StreamDelta, ToolDefinition
from .validation import validate_request

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


def message_to_openai(msg: Message) -> dict[str, Any]:
    """Return a message in the OpenAI chat format."""
    out: dict[str, Any] = {"role": msg.role}
    if msg.tool_calls:
        out["content"] = msg.content
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name,
                             "arguments": json.dumps(call.args, ensure_ascii=False)},
            }
            for call in msg.tool_calls
        ]
    else:
        out["content"] = msg.content if msg.content is not None else ""
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    if msg.name is not None:
        out["name"] = msg.name
    return out


def standard_options(req: InferenceRequest) -> dict[str, Any]:
    """Return the sampling fields of the OpenAI chat API that ``req`` sets."""
    body: dict[str, Any] = {}
    for key in ("temperature", "max_tokens", "top_p", "seed"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    if req.stop:
        body["stop"] = list(req.stop)
    if req.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": req.json_schema, "strict": True},
        }
    return body


def llama_options(req: InferenceRequest) -> dict[str, Any]:
    """Return llama.cpp's own sampling fields (also accepted by several other servers)."""
    body: dict[str, Any] = {}
    for key in ("top_k", "min_p", "repeat_penalty", "n_probs", "grammar"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    return body


class ServerClient:
    """An OpenAI-compatible chat client for one server URL."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        chat_path: str = "/v1/chat/completions",
        options: Callable[[InferenceRequest], dict[str, Any]] | None = None,
        text_parser: TextToolParser | None = None,
        stream_parser: Callable[[list[ToolDefinition]], StreamTextParser] | None = None,
        default_model: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._shown_base = redact_url(self.base_url)
        self._api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        self.chat_path = chat_path
        self.options = options or (lambda req: {**standard_options(req), **llama_options(req)})
        self.text_parser = text_parser
        self.stream_parser = stream_parser
        self.default_model = default_model
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            settle_environment(session, self.base_url)
        self.session = session
        self._templates: dict[tuple[str, str], requests.PreparedRequest] = {}
        self._template_headers: tuple[tuple[str, str | bytes], ...] = ()
        self.session.headers["User-Agent"] = f"pedrollm/{__version__}"
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        key = "***" if self._api_key else None
        return f"ServerClient(base_url={self._shown_base!r}, api_key={key!r})"

    def _shown(self, url: str) -> str:
        """Return url as it may appear in messages: the password of its user-info hidden."""
        return url.replace(self.base_url, self._shown_base, 1)

    # -- transport -----------------------------------------------------------------

    def url(self, path: str) -> str:
        """Return the absolute URL of a server path."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def _prepare(self, method: str, url: str, json_body: Any) -> requests.PreparedRequest:
        """A prepared request: a copy of one prepared per (method, URL), with this body.

        ``Session.request`` merges the session's headers, cookies and hooks into every
        request afresh, most of a local request's client-side cost; this client sends
        to a handful of URLs with fixed headers, so the merge is done once per URL.
        Headers changed on the session afterwards reset the templates.
        """
        headers_now = tuple(self.session.headers.items())
        if headers_now != self._template_headers:
            self._templates = {}
            self._template_headers = headers_now
        template = self._templates.get((method, url))
        if template is None:
            template = self.session.prepare_request(requests.Request(method, url))
            self._templates[(method, url)] = template
        prepared = template.copy()
        if json_body is not None:
            prepared.prepare_body(data=None, files=None, json=json_body)
        return prepared

    def _send_once(self, method: str, url: str, json_body: Any, stream: bool,
                   timeout: tuple[float, float]) -> requests.Response:
        """Send one request; map transport failures and HTTP errors to SDK errors."""
        shown = self._shown(url)
        try:
            resp = self.session.send(self._prepare(method, url, json_body), stream=stream,
                                     timeout=timeout)
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
        if resp.status_code >= 400:
            try:
                text = resp.text
            except requests.exceptions.RequestException:
                text = ""
            finally:
                resp.close()
            raise error_from_response(resp.status_code, text, resp.headers, shown)
        return resp

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        stream: bool = False,
        retry: bool = True,
        read_timeout: float | None = None,
    ) -> requests.Response:
        """Send a request with the retry policy; return the successful response."""
        url = self.url(path)
        timeout = (self.connect_timeout, read_timeout or self.read_timeout)
        waited = 0.0
        attempt = 0
        while True:
            try:
                return self._send_once(method, url, json_body, stream, timeout)
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
        return _decode_json(resp, self._shown(self.url(path)))

    def post_json(self, path: str, body: Any, *, retry: bool = True) -> Any:
        """POST a JSON body and decode the JSON reply."""
        resp = self.request("POST", path, json_body=body, retry=retry)
        return _decode_json(resp, self._shown(self.url(path)))

    # -- chat ----------------------------------------------------------------------

    def chat_body(self, req: InferenceRequest, *, stream: bool,
                  native_tools: bool = True) -> dict[str, Any]:
        """Build the chat-completions body for ``req`` (tools left out when not native)."""
        body: dict[str, Any] = {
            "messages": [message_to_openai(m) for m in req.all_messages()],
        }
        model = req.model or self.default_model
        if model:
            body["model"] = model
        if req.tools and native_tools:
            body["tools"] = [t.to_openai() for t in req.tools]
            if req.tool_choice is not None:
                choice = req.tool_choice
                if isinstance(choice, str) and choice not in ("auto", "none", "required"):
                    choice = {"type": "function", "function": {"name": choice}}
                body["tool_choice"] = choice
        body.update(self.options(req))
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(req.extra)
        return body

    def infer(self, req: InferenceRequest, *, native_tools: bool = True) -> InferenceResponse:
        """Send ``req`` and return the whole reply.

        With ``native_tools=False`` the tools stay out of the body (the caller has
        described them in the prompt) and calls are parsed from the text.
        """
        validate_request(req)
        body = self.chat_body(req, stream=False, native_tools=native_tools)
        resp = self.request("POST", self.chat_path, json_body=body)
        data = _decode_json(resp, self._shown(self.url(self.chat_path)))
        raw = raw_reply_from_completion(data)
        return build_response(raw, req.tools, self.text_parser)

    def stream(self, req: InferenceRequest, *,
               native_tools: bool = True) -> Iterator[StreamDelta]:
        """Send ``req`` streamed; yield deltas, the last one carrying the whole reply."""
        validate_request(req)
        body = self.chat_body(req, stream=True, native_tools=native_tools)
        return self._stream_body(body, req.tools)

    def _stream_body(self, body: dict[str, Any],
                     tools: Sequence[ToolDefinition]) -> Iterator[StreamDelta]:
        """Run one streamed request (nothing is retried once data has arrived)."""
        resp = self.request("POST", self.chat_path, json_body=body, stream=True)
        where = self._shown(self.url(self.chat_path))
        acc = StreamAccumulator()
        ndjson = "ndjson" in resp.headers.get("Content-Type", "")
        # With tools offered, content runs through the model format's incremental
        # parser, so tool-call markup arrives as tool-call deltas, not as text.
        parser = self.stream_parser(list(tools)) if tools and self.stream_parser else None
        delivered = False
        try:
            for data in iter_events(_arriving_bytes(resp), ndjson=ndjson):
                deltas = acc.feed_data(data)
                if acc.done:
                    break
                for delta in deltas:
                    delivered = True
                    if parser is not None and delta.content:
                        yield from parser.feed(delta.content)
                    else:
                        yield delta
        except StreamError as exc:
            raise StreamInterrupted(str(exc), self._partial(acc, tools)) from exc
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                OSError) as exc:
            if not delivered and acc.events == 0 and _is_read_timeout(exc):
                raise ReadTimeout(
                    f"{where} sent no tokens for {self.read_timeout:g}s "
                    "(read timeout)"
                ) from exc
            raise StreamInterrupted(
                f"the stream from {where} broke off: {_reason(exc)}",
                self._partial(acc, tools),
            ) from exc
        finally:
            resp.close()
        if not acc.done and acc.finish_reason is None:
            raise StreamInterrupted(
                f"the stream from {where} ended without [DONE] "
                "or a finish reason",
                self._partial(acc, tools),
            )
        if acc.events == 0:
            raise InvalidResponse("the stream ended without any chunk")
        if acc.choices == 0:
            raise InvalidResponse("the stream carried no choices")
        parsed = None
        if parser is not None:
            yield from parser.flush()
            parsed = parser.finish()
        yield StreamDelta(response=build_response(acc.reply(), tools, self.text_parser, parsed))

    def _partial(self, acc: StreamAccumulator,
                 tools: Sequence[ToolDefinition]) -> InferenceResponse:
        """Return what a broken stream delivered, as a response (never raises)."""
        raw: RawReply = acc.reply()
        try:
            return build_response(raw, tools, self.text_parser)
        except Exception:  # the partial is best effort; the interruption is the error
            return InferenceResponse(text=raw.content, reasoning=raw.reasoning or None)

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()


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


def _decode_json(resp: requests.Response, url: str) -> Any:
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


def options_for(*parts: Callable[[InferenceRequest], dict[str, Any]]
                ) -> Callable[[InferenceRequest], dict[str, Any]]:
    """Combine option builders into one (later ones win)."""
    def build(req: InferenceRequest) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in parts:
            out.update(part(req))
        return out
    return build


