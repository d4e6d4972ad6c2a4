"""Any OpenAI-compatible server, and the base every other backend builds on.

Everything a server does the standard way lives here once; a backend module
overrides only what its server does differently (default URL, readiness,
context discovery, request options, unsupported features).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Self, get_args

import requests

from ..backend import Backend, Health
from ..client import MAX_RESPONSE_BYTES, HTTPClient, RetryPolicy
from ..constrained import (
    EnvelopeStreamParser,
    hermes_call_grammar,
    read_envelope,
    requires_call,
    with_envelope_prompt,
)
from ..errors import (
    ConfigError,
    ConnectionFailed,
    DeadlineExceeded,
    HTTPError,
    InvalidResponse,
    ModelLoading,
    PedroLLMError,
    ResponseTooLarge,
    StreamInterrupted,
    ToolsNotEnabled,
    UnsupportedFeature,
)
from ..redaction import redact_url
from ..reply import (
    StreamTextParser,
    TextParseResult,
    TextToolParser,
    build_response,
    raw_reply_from_completion,
)
from ..request_body import chat_body, llama_options, standard_options, think_options
from ..streaming import StreamAccumulator, StreamError, ThinkSplitter
from ..tokens import TokenCount, estimate_request_tokens
from ..toolprompt import with_tools_in_prompt
from ..types import (
    InferenceRequest,
    InferenceResponse,
    ModelInfo,
    ServerInfo,
    StreamDelta,
    ToolDefinition,
)
from ..validation import validate_request

log = logging.getLogger("pedrollm")

#: How tools reach a server (see :meth:`OpenAIBackend.tool_mode_for`).
ToolMode = Literal["native", "constrained", "prompt"]
#: The values of ``model.tool_mode``: a mode, or ``auto`` to choose from the server.
TOOL_MODES = ("auto", *get_args(ToolMode))

# Keys servers use for a model's context window in their model listings.
CONTEXT_KEYS = ("n_ctx", "max_model_len", "context_length", "max_context_length",
                "loaded_context_length", "context_window")


def find_context(entry: Any) -> int | None:
    """Return the first positive context size found in a model entry or its ``meta``."""
    if not isinstance(entry, Mapping):
        return None
    for where in (entry, entry.get("meta")):
        if isinstance(where, Mapping):
            for key in CONTEXT_KEYS:
                value = where.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return None


def _check_format(name: str) -> None:
    """Refuse an unknown tool-call format name, listing the known ones."""
    from ..toolcalls import UnknownFormatError, get_format

    try:
        get_format(name)
    except UnknownFormatError as exc:
        raise ConfigError(f"model.tool_call_format: {exc}") from None


class OpenAIBackend(Backend):
    """A server that speaks the OpenAI chat-completions API under ``/v1``."""

    name = "openai"
    default_url: str | None = None
    chat_path = "/v1/chat/completions"
    health_path = "/v1/models"
    default_tool_format = "hermes"
    # Whether a refusal of native tools switches to tools described in the prompt.
    text_tools_fallback = False
    # Whether the server constrains a reply to a JSON schema (constrained tool mode).
    takes_json_schema = True
    # Whether the server takes a GBNF grammar (prompt-mode calls made certain).
    takes_gbnf = False
    # Request fields this server ignores or refuses: field -> why.
    unsupported: Mapping[str, str] = {}
    # Where the server takes OpenAI embeddings requests.
    embeddings_path = "/v1/embeddings"

    def __init__(
        self,
        server_url: str | None = None,
        *,
        model: str | None = None,
        api_key: str | None = None,
        context_size: int | None = None,
        usable_context: int | None = None,
        enable_tools: bool = True,
        native_tools: bool | None = None,
        tool_mode: str = "auto",
        tool_call_format: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 600.0,
        max_retries: int = 3,
        retry_budget: float = 30.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        transport: HTTPClient | None = None,
    ) -> None:
        if transport is None:
            url = server_url or self.default_url
            if not url:
                raise ConfigError(f"model.server_url: required for the {self.name} backend")
            transport = HTTPClient(
                url,
                api_key=api_key,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retry=RetryPolicy(max_retries=max_retries, budget=retry_budget),
                headers=headers,
                session=session,
                max_response_bytes=max_response_bytes,
                deadline=deadline,
            )
        #: The transport; its ``request``/``get_json``/``post_json`` send raw requests.
        self.client = transport
        self.model = model
        self.context_size = context_size
        self.usable_context = usable_context
        self.enable_tools = enable_tools
        self.native_tools = native_tools
        if tool_mode not in TOOL_MODES:
            raise ConfigError(f"model.tool_mode: must be one of {', '.join(TOOL_MODES)}, "
                              f"got {tool_mode!r}")
        self.tool_mode = tool_mode
        if tool_call_format is not None:
            _check_format(tool_call_format)
        self.configured_tool_format = tool_call_format
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._native_detected: bool | None = None
        self._warned_tools_off = False
        self._discovered_context: int | None = None
        self._discovery_done = False
        self._tool_format: str | None = None

    @classmethod
    def from_config(cls, cfg: Any, session: requests.Session | None = None) -> Self:
        """Build the backend from a ``ModelConfig``."""
        return cls(
            cfg.resolved_server_url(),
            model=cfg.model_name,
            api_key=cfg.api_key,
            context_size=cfg.context_size,
            usable_context=cfg.usable_context,
            enable_tools=cfg.enable_tools,
            native_tools=getattr(cfg, "native_tools", None),
            tool_mode=getattr(cfg, "tool_mode", "auto"),
            tool_call_format=cfg.tool_call_format,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_retries=cfg.max_retries,
            retry_budget=cfg.retry_budget,
            max_response_bytes=getattr(cfg, "max_response_bytes", MAX_RESPONSE_BYTES),
            deadline=getattr(cfg, "deadline", None),
            session=session,
        )

    def __repr__(self) -> str:
        shown = redact_url(self.server_url)
        return f"{type(self).__name__}(server_url={shown!r}, model={self.model!r})"

    @property
    def server_url(self) -> str:
        """The server's base URL."""
        return self.client.base_url

    # -- requests ------------------------------------------------------------------

    def request_options(self, req: InferenceRequest) -> dict[str, Any]:
        """Return the sampling fields to send; override for a server's own names.

        An unknown OpenAI-compatible server gets llama.cpp's extra samplers and
        ``grammar`` under their usual names (llama.cpp, vLLM and LM Studio take them)
        rather than having them dropped without a word.
        """
        return {**standard_options(req), **llama_options(req)}

    def think_options(self, req: InferenceRequest) -> dict[str, Any]:
        """The body fields for ``req.think``: ``chat_template_kwargs.enable_thinking`` for
        on/off, ``reasoning_effort`` for a level; override for a server's own names."""
        return think_options(req)

    def check_request(self, req: InferenceRequest) -> None:
        """Refuse what this server cannot do, saying why, before anything is sent."""
        for field_name, why in self.unsupported.items():
            value = getattr(req, field_name)
            if value not in (None, [], {}):
                raise UnsupportedFeature(f"{field_name} is not supported by {self.name}: {why}")

    def prepare(self, req: InferenceRequest) -> InferenceRequest:
        """Fill configured defaults (temperature, max_tokens) and check support."""
        changes: dict[str, Any] = {}
        if req.temperature is None and self.temperature is not None:
            changes["temperature"] = self.temperature
        if req.max_tokens is None and self.max_tokens is not None:
            changes["max_tokens"] = self.max_tokens
        if req.tools and not self.enable_tools:
            # The config turned tools off: answer in text, as without tools, and say so
            # once rather than failing an agent's every turn.
            if not self._warned_tools_off:
                self._warned_tools_off = True
                warnings.warn(
                    f"tools were offered but model.enable_tools is false for the {self.name} "
                    "backend: they are left out and the model answers in text",
                    RuntimeWarning, stacklevel=4)
            changes.update(tools=[], tool_choice=None)
        out = dataclasses.replace(req, **changes) if changes else req
        self.check_request(out)
        return out

    def tool_mode_for(self, req: InferenceRequest | None = None) -> ToolMode:
        """How tools reach the server: ``native``, ``constrained`` or ``prompt``.

        ``model.tool_mode`` decides when it is set; on ``auto``, tools go natively when
        the server returns tool calls, else the reply is constrained to a call or an
        answer (see :mod:`pedrollm.constrained`) where the server takes a JSON schema
        and the request brings none of its own, else they are only described in the
        prompt. ``native_tools: false`` asks for the prompt.
        """
        if self.tool_mode != "auto":
            return self.tool_mode  # type: ignore[return-value]
        if self.supports_native_tools():
            return "native"
        if self.native_tools is False:
            return "prompt"
        if self.takes_json_schema and (req is None or req.json_schema is None):
            return "constrained"
        return "prompt"

    def _outgoing(self, req: InferenceRequest) -> tuple[InferenceRequest, ToolMode]:
        """The request to send, rewritten for its tool mode, and that mode."""
        validate_request(req)
        out = self.prepare(req)
        if not out.tools:
            return out, "native"
        mode = self.tool_mode_for(out)
        if mode == "native":
            return out, mode
        if mode == "constrained":
            return with_envelope_prompt(out), mode
        fmt = self.tool_call_format()
        prompted = with_tools_in_prompt(out, fmt)
        if (requires_call(out.tool_choice) and self.takes_gbnf and fmt == "hermes"
                and out.grammar is None and out.json_schema is None):
            # A call is required: make the model write one, in the form the parser reads.
            prompted = dataclasses.replace(
                prompted, grammar=hermes_call_grammar(out.tools, out.tool_choice))
        return prompted, mode

    def _falls_back(self, exc: ToolsNotEnabled, mode: ToolMode) -> bool:
        """Whether a refusal of native tools should switch this backend off native tools.

        Only where the server can do without (``text_tools_fallback``) and the config
        left ``native_tools`` and ``tool_mode`` to discovery; the switch is remembered.
        """
        if not (mode == "native" and self.text_tools_fallback and self.native_tools is None
                and self.tool_mode == "auto"):
            return False
        self._native_detected = False
        how = ("replies are now constrained to a tool call or an answer"
               if self.takes_json_schema else
               "tools are now described in the prompt and calls read from the text")
        warnings.warn(
            f"the {self.name} server at {redact_url(self.server_url)} refused native tools "
            f"({exc.message}); {how}. Start llama-server with --jinja for native tool calls.",
            RuntimeWarning,
            stacklevel=3,
        )
        return True

    def chat_body(self, req: InferenceRequest, *, stream: bool = False) -> dict[str, Any]:
        """Return the body ``infer`` (or ``stream``) would send for ``req``.

        Validated, configured defaults filled in, tools sent natively, described in the
        prompt, or turned into a constraint as the server needs; nothing is sent.
        """
        out, mode = self._outgoing(req)
        return self._body(out, mode, stream=stream)

    def _body(self, out: InferenceRequest, mode: ToolMode, *, stream: bool) -> dict[str, Any]:
        """The chat body for a prepared request."""
        options = {**self.request_options(out), **self.think_options(out)}
        return chat_body(out, options, model=self.default_model(), stream=stream,
                         native_tools=mode == "native")

    def default_model(self) -> str | None:
        """The model a request names when it names none: the configured one."""
        return self.model

    def infer(self, req: InferenceRequest) -> InferenceResponse:
        """Send a request and return the whole reply."""
        out, mode = self._outgoing(req)
        try:
            return self._infer_once(out, mode)
        except ToolsNotEnabled as exc:
            if not self._falls_back(exc, mode):
                raise
        out, mode = self._outgoing(req)
        return self._infer_once(out, mode)

    def _infer_once(self, out: InferenceRequest, mode: ToolMode) -> InferenceResponse:
        """POST one chat request and build the response from its body."""
        data = self.client.post_json(self.chat_path, self._body(out, mode, stream=False),
                                     deadline=out.deadline)
        return build_response(raw_reply_from_completion(data), out.tools,
                              self._text_parser(mode))

    def stream(self, req: InferenceRequest) -> Iterator[StreamDelta]:
        """Send a request streamed; the last delta carries the whole reply."""
        out, mode = self._outgoing(req)
        return self._stream(req, out, mode)

    def _stream(self, req: InferenceRequest, out: InferenceRequest,
                mode: ToolMode) -> Iterator[StreamDelta]:
        """Stream, switching off native tools once if the server refuses them."""
        try:
            yield from self._stream_once(out, mode)
            return
        except ToolsNotEnabled as exc:
            # Refused before any data arrived, so sending again repeats nothing.
            if not self._falls_back(exc, mode):
                raise
        out, mode = self._outgoing(req)
        yield from self._stream_once(out, mode)

    def _stream_once(self, out: InferenceRequest, mode: ToolMode) -> Iterator[StreamDelta]:
        """Run one streamed request (nothing is retried once data has arrived)."""
        events = self.client.open_stream(self.chat_path, self._body(out, mode, stream=True),
                                         deadline=out.deadline)
        tools = out.tools
        acc = StreamAccumulator()
        text_parser = self._text_parser(mode)
        # With tools offered, content runs through the model format's incremental
        # parser, so tool-call markup arrives as tool-call deltas, not as text.
        parser = self._stream_parser(list(tools), mode) if tools else None
        # Without tools, a think block left in the text is split off as the final
        # response splits it, so the deltas add up to that response.
        splitter = ThinkSplitter() if parser is None else None
        try:
            for data in events:
                deltas = acc.feed_data(data)
                if acc.done:
                    break
                for delta in deltas:
                    if parser is not None and delta.content:
                        yield from parser.feed(delta.content)
                    elif splitter is not None and delta.content and not acc.reasoning:
                        yield from splitter.feed(delta.content)
                    else:
                        yield delta
        except StreamError as exc:
            raise StreamInterrupted(str(exc), self._partial(acc, tools, text_parser)) from exc
        except (StreamInterrupted, ResponseTooLarge, DeadlineExceeded) as exc:
            # The transport cannot know what the deltas added up to; attach it here.
            raise type(exc)(str(exc), self._partial(acc, tools, text_parser)) from exc.__cause__
        finally:
            events.close()
        where = events.url
        if not acc.done and acc.finish_reason is None:
            raise StreamInterrupted(
                f"the stream from {where} ended without [DONE] or a finish reason",
                self._partial(acc, tools, text_parser),
            )
        if acc.events == 0:
            raise InvalidResponse("the stream ended without any chunk")
        if acc.choices == 0:
            raise InvalidResponse("the stream carried no choices")
        parsed = None
        if splitter is not None:
            yield from splitter.flush()
        if parser is not None:
            yield from parser.flush()
            parsed = parser.finish()
        yield StreamDelta(response=build_response(acc.reply(), tools, text_parser, parsed))

    # -- token counting ------------------------------------------------------------

    def count_tokens(self, req: InferenceRequest) -> TokenCount:
        """Count the prompt of the body ``infer`` would send (tools as this server gets them).

        A server that counts (:meth:`count_body_tokens`) gives the exact number; else the
        request is estimated. A refusal of native tools switches modes as ``infer`` does.
        """
        out, mode = self._outgoing(req)
        try:
            counted = self.count_body_tokens(self._body(out, mode, stream=False), out.deadline)
        except ToolsNotEnabled as exc:
            if not self._falls_back(exc, mode):
                raise
            out, mode = self._outgoing(req)
            counted = self.count_body_tokens(self._body(out, mode, stream=False), out.deadline)
        return counted if counted is not None else estimate_request_tokens(out)

    def count_body_tokens(self, body: dict[str, Any],
                          deadline: float | None = None) -> TokenCount | None:
        """Ask the server to count a chat body's prompt; None where it cannot (the default)."""
        return None

    def reply_token_limit(self, req: InferenceRequest) -> int | None:
        """The request's max_tokens, else the configured default."""
        return req.max_tokens if req.max_tokens is not None else self.max_tokens

    def _partial(self, acc: StreamAccumulator, tools: Sequence[ToolDefinition],
                 text_parser: TextToolParser) -> InferenceResponse:
        """Return what a broken stream delivered, as a response (never raises)."""
        raw = acc.reply()
        try:
            return build_response(raw, tools, text_parser)
        except Exception:  # the partial is best effort; the interruption is the error
            return InferenceResponse(text=raw.content, reasoning=raw.reasoning or None)

    # -- embeddings ----------------------------------------------------------------

    def embed_batch(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        """POST one OpenAI ``/v1/embeddings`` request; vectors in input order.

        A 501 (the server has the route but not the feature) becomes UnsupportedFeature
        carrying the server's reason.
        """
        from ..embeddings import read_openai_vectors

        body: dict[str, Any] = {"input": texts, "encoding_format": "float"}
        if model or self.model:
            body["model"] = model or self.model
        try:
            data = self.client.post_json(self.embeddings_path, body)
        except HTTPError as exc:
            refused = self.embeddings_refused(exc)
            if refused is exc:
                raise
            raise refused from exc
        return read_openai_vectors(data, len(texts), self.client.shown_url(self.embeddings_path))

    def embeddings_refused(self, exc: HTTPError) -> PedroLLMError:
        """The error to raise for a refused embeddings request (501: UnsupportedFeature)."""
        if exc.status == 501:
            return UnsupportedFeature(
                f"the {self.name} server at {redact_url(self.server_url)} does not serve "
                f"embeddings: {exc.message}")
        return exc

    # -- tool-call text fallback ---------------------------------------------------

    def tool_call_format(self) -> str:
        """The model format used to find tool calls in text: configured, detected, default."""
        if self.configured_tool_format:
            return self.configured_tool_format
        if self._tool_format is None:
            self._tool_format = self.detect_tool_format() or self.default_tool_format
        return self._tool_format

    def detect_tool_format(self) -> str | None:
        """Guess the model's tool-call format from what the server reveals."""
        from ..toolcalls import detect_format

        return detect_format(model_name=self.model)

    def think_open(self) -> bool | None:
        """Whether replies start inside a think block the prompt opened (no ``<think>``).

        None means "decide from the text": a ``</think>`` with no opening tag.
        """
        return False

    def _parse_text(self, text: str, tools: list[ToolDefinition]) -> TextParseResult:
        """Parse tool calls out of text with the model's format."""
        from ..toolcalls import get_format

        return get_format(self.tool_call_format()).parse(text, tools,
                                                         think_open=self.think_open())

    def _read_constrained(self, text: str, tools: list[ToolDefinition]) -> TextParseResult:
        """Read a constrained reply; text that is no envelope goes to the format's parser."""
        found = read_envelope(text, tools)
        return found if found is not None else self._parse_text(text, tools)

    def _text_parser(self, mode: ToolMode) -> TextToolParser:
        """How a reply's text is read for tool calls in this mode."""
        return self._read_constrained if mode == "constrained" else self._parse_text

    def _stream_parser(self, tools: list[ToolDefinition],
                       mode: ToolMode = "native") -> StreamTextParser:
        """An incremental parser for one stream: the model's format, or the envelope."""
        if mode == "constrained":
            return EnvelopeStreamParser(tools, fallback=self._parse_text)
        from ..toolcalls import StreamingParser

        return StreamingParser(self.tool_call_format(), tools, think_open=self.think_open())

    # -- discovery -----------------------------------------------------------------

    def discover_context_window(self) -> int | None:
        """Ask the server for its context window; None when it does not say."""
        for model in self.list_models():
            if self.model is None or model.id == self.model:
                if model.context_window:
                    return model.context_window
        return None

    def _discovered(self) -> int | None:
        """Discover the context window once and remember it."""
        if not self._discovery_done:
            self._discovered_context = self.discover_context_window()
            self._discovery_done = True
        return self._discovered_context

    def get_context_window(self) -> int:
        """Return the configured context size, else the one the server reports."""
        if self.context_size is not None:
            if not self._discovery_done:
                try:
                    found = self._discovered()
                except PedroLLMError as exc:
                    log.debug("context discovery failed: %s", exc)
                    self._discovery_done = True
                    found = None
                if found is not None and found < self.context_size:
                    warnings.warn(
                        f"model.context_size is {self.context_size} but the {self.name} server "
                        f"at {self.server_url} reports {found} tokens; requests longer than "
                        f"{found} tokens will fail",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            return self.context_size
        found = self._discovered()
        if found is None:
            raise UnsupportedFeature(
                f"the {self.name} server at {self.server_url} does not report its context "
                "window; set model.context_size in the config"
            )
        return found

    def get_configured_usable_context(self) -> int | None:
        """Return the configured usable context, if any."""
        return self.usable_context

    def supports_native_tools(self) -> bool:
        """True when tools are enabled and go to the server natively.

        ``native_tools`` in the config forces the answer; otherwise the server is asked.
        """
        if not self.enable_tools:
            return False
        if self.native_tools is not None:
            return self.native_tools
        if self._native_detected is None:
            self._native_detected = self.detect_native_tools()
        return self._native_detected

    def detect_native_tools(self) -> bool:
        """Whether the server itself returns tool calls; OpenAI-compatible servers do."""
        return True

    def health(self) -> Health:
        """Probe the readiness endpoint once."""
        try:
            self.client.request("GET", self.health_path, retry=False).close()
        except ModelLoading as exc:
            return Health("loading", exc.message)
        except ConnectionFailed as exc:
            return Health("unreachable", str(exc))
        except PedroLLMError as exc:
            return Health("error", str(exc))
        return Health("ok", f"{self.name} server at {self.server_url} is ready")

    def list_models(self) -> list[ModelInfo]:
        """Return the models of ``/v1/models``."""
        data = self.client.get_json("/v1/models")
        items = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            items = data.get("models") if isinstance(data, Mapping) else None
        out: list[ModelInfo] = []
        for item in items or []:
            if isinstance(item, Mapping) and isinstance(item.get("id") or item.get("name"), str):
                meta = item.get("meta")
                out.append(ModelInfo(
                    id=str(item.get("id") or item.get("name")),
                    context_window=find_context(item),
                    owned_by=item.get("owned_by") if isinstance(item.get("owned_by"), str)
                    else None,
                    meta=dict(meta) if isinstance(meta, Mapping) else {},
                ))
        return out

    def server_version(self) -> str | None:
        """Return the server's version string when it publishes one."""
        return None

    def server_info(self) -> ServerInfo:
        """Return what discovery learned about the server."""
        try:
            window: int | None = self.get_context_window()
        except PedroLLMError:
            window = None
        return ServerInfo(
            backend=self.name,
            server_url=self.server_url,
            model=self.model,
            context_window=window,
            native_tools=self.supports_native_tools(),
            version=self.server_version(),
            tool_call_format=self.tool_call_format(),
            tool_mode=self.tool_mode_for() if self.enable_tools else None,
        )

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
