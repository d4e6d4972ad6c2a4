"""The SDK's one exception tree, rooted at :class:`PedroLLMError`.

Whatever a server does wrong (refuses the connection, times out, answers an HTTP
error, sends something that is not JSON, cuts a stream) reaches the caller as one of
these classes; no ``requests`` or ``json`` exception escapes for a server's fault.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .types import InferenceResponse


class PedroLLMError(Exception):
    """Base class of every error the SDK raises."""


class ConfigError(PedroLLMError, ValueError):
    """A configuration value is missing or wrong; the message names the field."""


class RequestValidationError(PedroLLMError, ValueError):
    """A request was refused before it was sent; ``field`` names the bad field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnsupportedFeature(PedroLLMError):
    """The server cannot do what the request asks (for example tool_choice on Ollama)."""


class ConnectionFailed(PedroLLMError):
    """The server could not be reached (refused, reset, DNS, TLS)."""


class EndpointState(NamedTuple):
    """One server of a pool as last seen: its URL, state (ok, loading, unreachable...)."""

    url: str
    state: str
    detail: str


class NoServerAvailable(ConnectionFailed):
    """No server of a pool could take the request; ``endpoints`` says how each one was."""

    def __init__(self, message: str, endpoints: list[EndpointState]) -> None:
        lines = [f"  {e.url}: {e.state}" + (f" ({e.detail})" if e.detail else "")
                 for e in endpoints]
        super().__init__("\n".join([message, *lines]))
        self.endpoints = endpoints


class Timeout(PedroLLMError):
    """The server did not answer within the configured timeout."""


class ConnectTimeout(Timeout, ConnectionFailed):
    """Connecting to the server took longer than the connect timeout."""


class ReadTimeout(Timeout):
    """The server accepted the request but sent nothing for longer than the read timeout."""


class InvalidResponse(PedroLLMError):
    """The server answered, but not with something the SDK can read."""


class ResponseTooLarge(InvalidResponse):
    """A reply (or one event of a stream) passed the size cap, counted after decompression.

    ``partial`` holds what a stream had delivered before the cap; None for a whole reply.
    """

    def __init__(self, message: str, partial: InferenceResponse | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class DeadlineExceeded(Timeout):
    """The request's total deadline passed; ``partial`` holds what a stream had delivered."""

    def __init__(self, message: str, partial: InferenceResponse | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class StructuredOutputError(PedroLLMError):
    """A reply asked for as a typed object does not parse or validate as one.

    ``raw_text`` is the reply's text as it came; ``reason`` says what is wrong with it
    (not JSON, or which field fails the schema and how).
    """

    def __init__(self, message: str, *, raw_text: str, reason: str) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.reason = reason


class StreamInterrupted(PedroLLMError):
    """A stream ended before it was complete; ``partial`` holds what had arrived."""

    def __init__(self, message: str, partial: InferenceResponse) -> None:
        super().__init__(message)
        self.partial = partial


class HTTPError(PedroLLMError):
    """The server answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        body: Any = None,
        url: str | None = None,
    ) -> None:
        where = f" from {url}" if url else ""
        super().__init__(f"HTTP {status}{where}: {message}")
        self.message = message
        self.status = status
        self.error_type = error_type
        self.body = body
        self.url = url


class BadRequest(HTTPError):
    """HTTP 400/422: the server refused the request as malformed or unsupported."""


class ContextOverflow(BadRequest):
    """The prompt does not fit the server's context window."""

    def __init__(self, message: str, *, n_prompt_tokens: int | None, n_ctx: int | None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.n_prompt_tokens = n_prompt_tokens
        self.n_ctx = n_ctx

    @classmethod
    def before_sending(cls, message: str, *, n_prompt_tokens: int,
                       n_ctx: int) -> ContextOverflow:
        """The overflow :meth:`~pedrollm.Backend.check_fits` finds before anything is sent.

        ``status`` is 400, what llama-server answers such a request with, and ``url`` is
        None; its text is the message alone, as no server said it.
        """
        exc = cls(message, n_prompt_tokens=n_prompt_tokens, n_ctx=n_ctx, status=400,
                  error_type="exceed_context_size_error")
        exc.args = (message,)
        return exc


class ToolsNotEnabled(BadRequest):
    """The server refused tools because it was started without tool support.

    llama-server without ``--jinja`` says so with a 500; the status is kept as sent.
    """


class AuthenticationError(HTTPError):
    """HTTP 401/403: the API key is missing or wrong."""


class NotFound(HTTPError):
    """HTTP 404: no such route or model."""


class RateLimited(HTTPError):
    """HTTP 429: too many requests; ``retry_after`` is the server's wait in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(HTTPError):
    """HTTP 5xx: the server failed."""


class ModelLoading(ServerError):
    """HTTP 503: the server is up but still loading its model."""


class MediaNotSupported(ServerError, UnsupportedFeature):
    """The server was sent an image (or audio, video) but its model takes no such input.

    llama-server answers 500 "image input is not supported - hint: ... provide the mmproj"
    when started without a multimodal projector; the message keeps its words and adds
    how to start it with one.
    """


class ThinkingNotSupported(BadRequest, UnsupportedFeature):
    """Thinking was turned on (``think``) for a model that does not think.

    Ollama refuses it with 400 '"<model>" does not support thinking'; llama-server and
    vLLM let the chat template ignore it instead.
    """


#: What llama-server adds to its refusal of media when no projector is loaded.
_MEDIA_REFUSAL = "input is not supported - hint: if this is unexpected, you may need to " \
                 "provide the mmproj"
MMPROJ_HINT = ("start llama-server with --mmproj <projector.gguf> for its model (or with "
               "-hf <repo> of a vision model, which fetches the projector too)")
class InputTooLarge(HTTPError):
    """An embedding input has more tokens than the server computes in one batch.

    llama-server embeds each input in one physical batch (``--ubatch-size``, 512 by
    default) and answers 500 for a longer one. ``index`` is the input's position in the
    list given to ``embed`` (None when it cannot be told), ``n_tokens`` its length and
    ``batch_size`` the server's batch.
    """

    def __init__(self, message: str, *, n_tokens: int | None, batch_size: int | None,
                 index: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.n_tokens = n_tokens
        self.batch_size = batch_size
        self.index = index


def parse_retry_after(value: str | None) -> float | None:
    """Return a Retry-After header's delay in seconds (numbers only), or None."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _error_fields(body: Any) -> tuple[str | None, str | None, Mapping[str, Any]]:
    """Pull (message, type, the error object) out of the error bodies servers send.

    llama-server and OpenAI nest ``{"error": {"message", "type", ...}}``; older vLLM
    sends a flat ``{"object": "error", "message", "type"}``; Ollama sends
    ``{"error": "text"}``; FastAPI validation sends ``{"detail": ...}``.
    """
    if not isinstance(body, Mapping):
        return None, None, {}
    err = body.get("error")
    if isinstance(err, Mapping):
        msg = err.get("message")
        etype = err.get("type")
        return (str(msg) if msg is not None else None,
                str(etype) if etype is not None else None, err)
    if isinstance(err, str):
        return err, None, body
    msg = body.get("message")
    if msg is None and "detail" in body:
        detail = body["detail"]
        msg = detail if isinstance(detail, str) else json.dumps(detail)
    etype = body.get("type")
    return (str(msg) if msg is not None else None,
            str(etype) if etype is not None else None, body)


def _as_int(value: Any) -> int | None:
    """Return value as an int when it is one, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Every known way a server says "the prompt does not fit", with where the numbers are.
# Servers built on another's engine pass its wording on in their own envelope (LM
# Studio runs llama.cpp; Ollama quotes its llama runner), so every pattern is tried
# whatever server sent it. Each is (pattern, group of the prompt tokens, group of the
# context size); 0 means the wording has no such number.
_OVERFLOW_WORDINGS: tuple[tuple[re.Pattern[str], int, int], ...] = (
    # llama-server: "request (72667 tokens) exceeds the available context size (4096
    # tokens), try increasing it"
    (re.compile(r"request \((\d+) tokens\) exceeds the available context size "
                r"\((\d+) tokens\)"), 1, 2),
    # older llama-server: "the request exceeds the available context size, try ..."
    (re.compile(r"exceeds the available context size"), 0, 0),
    # vLLM: "The decoder prompt (length 5000) is longer than the maximum model length
    # of 4096."
    (re.compile(r"prompt \(length (\d+)\) is longer than the maximum model length of "
                r"(\d+)"), 1, 2),
    # LM Studio: "Trying to keep the first 5000 tokens when context the overflows.
    # However, the model is loaded with context length of only 4096 tokens, ..."
    (re.compile(r"keep the first (\d+) tokens when context the overflows\..*? context "
                r"length of only (\d+) tokens", re.DOTALL), 1, 2),
    # LM Studio, through llama.cpp's context check: "... (n_keep: 5000>= n_ctx: 4096)".
    (re.compile(r"n_keep: (\d+) ?>= ?n_ctx: (\d+)"), 1, 2),
    # Ollama: "the input length exceeds the context length" (embeddings, truncate off),
    # "the prompt is longer than the context length currently available" (shift off).
    (re.compile(r"input length exceeds the context length"), 0, 0),
    (re.compile(r"prompt is longer than the context length"), 0, 0),
)
# vLLM and OpenAI: "This model's maximum context length is 4096 tokens. However, you
# requested 5000 tokens (4900 in the messages, 100 in the completion)", "... your
# request has 5000 input tokens", "... your messages resulted in 5000 tokens".
_CTX_LIMIT = re.compile(r"maximum context length is (\d+) tokens")
# Most precise first: the prompt alone, then the whole request.
_CTX_PROMPT = (re.compile(r"(\d+) in the messages"),
               # vLLM since late 2025: "... you requested 0 output tokens and your prompt
               # contains at least 5000 input tokens, for a total of ..."
               re.compile(r"prompt contains (?:at least )?(\d+) input tokens"),
               re.compile(r"request has (\d+) input tokens"),
               re.compile(r"messages resulted in (\d+) tokens"),
               re.compile(r"requested (\d+) tokens"))
# Statuses an overflow comes with: 400 mostly, 413/422 from proxies and FastAPI, 500
# from Ollama's embeddings and older servers.
_OVERFLOW_STATUSES = (400, 413, 422, 500)


def _overflow_numbers(message: str) -> tuple[int | None, int | None] | None:
    """Return (n_prompt_tokens, n_ctx) from a worded overflow message, or None."""
    for pattern, prompt_group, ctx_group in _OVERFLOW_WORDINGS:
        found = pattern.search(message)
        if found is not None:
            return (int(found.group(prompt_group)) if prompt_group else None,
                    int(found.group(ctx_group)) if ctx_group else None)
    limit = _CTX_LIMIT.search(message)
    if limit is None:
        return None
    prompts = (pattern.search(message) for pattern in _CTX_PROMPT)
    n_prompt = next((int(m.group(1)) for m in prompts if m), None)
    return n_prompt, int(limit.group(1))


def _quoted_envelope(message: str) -> Mapping[str, Any] | None:
    """The error object of an envelope quoted as a message's text, if it is one.

    Ollama passes its llama runner's error on as a string: ``{"error": "{\"error\":
    {\"message\": ..., \"n_ctx\": 4096}}"}``; the numbers are inside.
    """
    text = message.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        return None
    _, _, fields = _error_fields(inner)
    return fields or None


# llama-server, an embedding input longer than its physical batch (server-context.cpp):
# "input (700 tokens) is too large to process. increase the physical batch size
# (current batch size: 512)".
_TOO_LARGE = re.compile(r"input \((\d+) tokens\) is too large to process\. increase the "
                        r"physical batch size \(current batch size: (\d+)\)")

_TOOLS_DISABLED_HINTS = (
    "--enable-auto-tool-choice",
    "tool-call-parser",
    "tools param requires --jinja",
    "does not support tools",
)


def error_from_response(
    status: int,
    text: str,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
) -> HTTPError:
    """Map an HTTP error reply (status, body text, headers) to its exception class."""
    try:
        body: Any = json.loads(text) if text else None
    except (ValueError, RecursionError):
        body = text
    message, etype, fields = _error_fields(body)
    if message is None:
        message = text.strip()[:500] if text and text.strip() else f"HTTP {status}"
    quoted = _quoted_envelope(message)
    if quoted is not None:
        inner_message = quoted.get("message")
        message = str(inner_message) if inner_message is not None else message
        etype = etype or (str(quoted["type"]) if quoted.get("type") is not None else None)
        fields = quoted
    common: dict[str, Any] = {"status": status, "error_type": etype, "body": body, "url": url}
    worded = _overflow_numbers(message) if status in _OVERFLOW_STATUSES else None
    if etype in ("exceed_context_size_error", "context_length_exceeded") \
            or "n_ctx" in fields or fields.get("code") == "context_length_exceeded":
        # The numbers from the fields, else from the words (OpenAI sends only words).
        return ContextOverflow(
            message,
            n_prompt_tokens=_as_int(fields.get("n_prompt_tokens"))
            or (worded[0] if worded else None),
            n_ctx=_as_int(fields.get("n_ctx")) or (worded[1] if worded else None),
            **common,
        )
    if worded is not None:
        return ContextOverflow(message, n_prompt_tokens=worded[0], n_ctx=worded[1], **common)
    too_large = _TOO_LARGE.search(message) if status == 500 else None
    if too_large is not None:
        return InputTooLarge(message, n_tokens=int(too_large.group(1)),
                             batch_size=int(too_large.group(2)), **common)
    # llama-server without --jinja answers 500 "tools param requires --jinja flag".
    if status in (400, 422, 500) and any(hint in message for hint in _TOOLS_DISABLED_HINTS):
        return ToolsNotEnabled(message, **common)
    if status == 500 and _MEDIA_REFUSAL in message:
        return MediaNotSupported(f"{message}; {MMPROJ_HINT}", **common)
    if status == 400 and message.endswith("does not support thinking"):
        return ThinkingNotSupported(message, **common)
    if status in (400, 422):
        return BadRequest(message, **common)
    if status in (401, 403):
        return AuthenticationError(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status == 429:
        retry = parse_retry_after((headers or {}).get("Retry-After"))
        return RateLimited(message, retry_after=retry, **common)
    if status == 503 and (etype == "unavailable_error" or "loading" in message.lower()):
        return ModelLoading(message, **common)
    if status >= 500:
        return ServerError(message, **common)
    return HTTPError(message, **common)
