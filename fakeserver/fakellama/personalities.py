"""Personalities: the routes, built-in answers, error shapes and quirks of each server kind."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fakellama.json_errors import parse_error_message
from fakellama.prompt import (
    CHAT_TEMPLATE,
    GENERATION_PROMPT,
    count_prompt_tokens,
    detokenize,
    render_chat,
    tokenize,
)
from fakellama.translate import anthropic_as_chat
from fakellama.validation import N_PARALLEL, Refusal, check_basic, check_llama
from fakellama.wire import JSON_CONTENT_TYPE, dumps, error_body

# llama-server's CORS defaults (common.h: cors_origins "*", cors_credentials true, so the
# request's Origin is echoed back, empty when it sent none; see server-http.cpp).
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_HEADERS = "*"


@dataclass
class ModelInfo:
    """What the fake says about its model: name, context size, build, whether it is loaded."""

    name: str = "scripted-tiny.gguf"
    ctx_size: int = 4096
    build_info: str = "b0-fakellama"
    metrics: bool = False
    # Started with --embeddings; the width of its vectors; its physical batch (--ubatch-size).
    embeddings: bool = False
    n_embd: int = 256
    ubatch_size: int = 512
    loaded: bool = True


@dataclass(frozen=True)
class Reply:
    """A complete, non-streamed HTTP reply."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", JSON_CONTENT_TYPE),)


def json_reply(status: int, value: Any, extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    """Return a JSON reply serialised the way llama-server serialises it."""
    return Reply(status, dumps(value).encode(), (("Content-Type", JSON_CONTENT_TYPE), *extra))


def text_reply(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
    """Return a plain-text reply."""
    return Reply(status, text.encode(), (("Content-Type", content_type),))


Builtin = Callable[[ModelInfo, Any], Reply]
# Says where the rule that produced a validation or built-in reply comes from (a repository,
# tag, file and line, or a documentation page), so a reply can be checked against it.
SOURCE_HEADER = "X-Fakellama-Source"


def sourced(reply: Reply, source: str) -> Reply:
    """The reply with the source of its rule in the X-Fakellama-Source header."""
    return Reply(reply.status, reply.body, (*reply.headers, (SOURCE_HEADER, source)))
# An escaped UTF-16 surrogate, which Python accepts alone and nlohmann::json does not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _finite_float(text: str) -> float:
    """A JSON number as Python reads it, refusing one too large (nlohmann::json does)."""
    try:
        value = float(text)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise ValueError(f"number overflow: {text}")
    return value


def _json_int(text: str) -> int:
    """A JSON integer; one past 64 bits is a double to nlohmann::json, so it may overflow."""
    value = int(text)
    if abs(value) >= 2**64:
        _finite_float(text)
    return value


def _refuse_constant(name: str) -> Any:
    """Python reads NaN and Infinity; nlohmann::json refuses them (as JSON does)."""
    raise ValueError(f"not JSON: {name}")


class Personality:
    """llama-server: the default personality; others override what differs.

    A personality may emulate several versions of its server (``VERSIONS``: label ->
    the version string the server reports, oldest first); the instance is one of them.
    """

    name = "llamacpp"
    # label -> the version the server reports; empty: one behaviour (llama-server, pinned).
    VERSIONS: dict[str, str] = {}
    # Options a server takes at start-up that change its answers: name -> default.
    OPTIONS: dict[str, str] = {}
    # What a request sent while the model loads gets: "refuse" (llama-server's 503),
    # "hold" (the request waits for the load, then is answered), or "absent" (nothing
    # listens until the model is loaded: the connection is dropped).
    loading_behaviour = "refuse"
    # Whether the server can require an API key at all, and why not where it cannot.
    takes_api_key = True
    no_key_reason = ""
    routes: dict[tuple[str, str], str] = {
        ("GET", "/health"): "health",
        ("GET", "/v1/health"): "health",
        ("GET", "/models"): "models",
        ("GET", "/v1/models"): "models",
        ("GET", "/props"): "props",
        ("GET", "/metrics"): "metrics",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/chat/completions"): "chat",
        ("POST", "/completion"): "completion",
        ("POST", "/completions"): "completion",
        ("POST", "/v1/completions"): "oai_completion",
        ("POST", "/tokenize"): "tokenize",
        ("POST", "/detokenize"): "detokenize",
        ("POST", "/apply-template"): "apply_template",
        ("POST", "/chat/completions/input_tokens"): "chat_tokens",
        ("POST", "/v1/chat/completions/input_tokens"): "chat_tokens",
        ("POST", "/v1/messages/count_tokens"): "anthropic_tokens",
        ("POST", "/v1/messages"): "anthropic",
        ("POST", "/v1/responses"): "responses",
        ("POST", "/responses"): "responses",
        ("GET", "/slots"): "slots",
        ("GET", "/lora-adapters"): "lora_adapters",
        # Features this server has off unless started with their flag: 501, as llama-server.
        ("POST", "/embedding"): "embedding",
        ("POST", "/embeddings"): "embedding",
        ("POST", "/v1/embeddings"): "embeddings",
        ("POST", "/rerank"): "rerank",
        ("POST", "/reranking"): "rerank",
        ("POST", "/v1/rerank"): "rerank",
        ("POST", "/v1/reranking"): "rerank",
        ("POST", "/infill"): "infill",
        ("GET", "/cors-proxy"): "disabled",
        ("POST", "/cors-proxy"): "disabled",
        ("GET", "/tools"): "disabled",
        ("POST", "/tools"): "disabled",
    }
    # "/" is the web UI's page: public, and a 404 in a build without the UI.
    public_paths = frozenset({"/health", "/v1/health", "/"})
    generating = frozenset({"chat", "completion", "oai_completion", "anthropic", "responses"})
    json_body = frozenset({"chat", "completion", "oai_completion", "tokenize", "detokenize",
                           "apply_template", "show", "chat_tokens", "anthropic_tokens",
                           "anthropic", "responses"})
    # httplib closes the connection after every reply of status 400 or above.
    closes_on_error = True

    def __init__(self, version: str | None = None,
                 options: dict[str, str] | None = None) -> None:
        """Be one emulated version of the server (the newest by default), with options."""
        if version is not None and not self.VERSIONS:
            raise ValueError(f"personality {self.name!r} emulates one version (the pinned "
                             f"server); drop '@{version}'")
        self.version = _version_label(self, version) if self.VERSIONS else ""
        unknown = sorted(set(options or {}) - set(self.OPTIONS))
        if unknown:
            known = ", ".join(sorted(self.OPTIONS)) or "none"
            raise ValueError(f"personality {self.name!r} has no option {unknown[0]!r} "
                             f"(its options: {known})")
        self.options = {**self.OPTIONS, **(options or {})}

    @property
    def spec(self) -> str:
        """The name and version as ``--personality`` takes it (``vllm@0.10``)."""
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def reported_version(self) -> str:
        """The version string this server reports about itself."""
        return self.VERSIONS.get(self.version, "")

    def guards(self, method: str, path: str) -> bool:
        """Whether a request to this route needs the API key (when one is set)."""
        return path not in self.public_paths

    def key_matches(self, headers: Any, api_key: str) -> bool:
        """As llama-server: Authorization, else X-Api-Key; either may carry "Bearer "."""
        key = headers.get("Authorization", "") or headers.get("X-Api-Key", "")
        return bool(key.removeprefix("Bearer ") == api_key)

    def check_request(self, endpoint: str, headers: Any, raw: bytes) -> Reply | None:
        """A refusal decided from the headers before the body is read (None: go on)."""
        return None

    def path_model(self, path: str) -> str:
        """The model name a route ends in (``/v1/models/{model}``); "" for other routes."""
        return ""

    def as_llama_request(self, body: Any) -> Any:
        """The request as llama-server fields say it (what matching and synthesis read)."""
        return body

    def endpoint(self, method: str, path: str) -> str | None:
        """Return the endpoint name for a method and path, or None for an unknown route.

        HEAD is GET without the body, as llama-server's HTTP library answers it.
        """
        found = self.routes.get((method, path))
        if found is None and method == "HEAD":
            found = self.routes.get(("GET", path))
        return found

    def error(self, status: int, message: str, error_type: str, **extra: Any) -> Reply:
        """Return this server's error reply."""
        return json_reply(status, error_body(status, message, error_type, **extra))

    def validate(self, endpoint: str, body: Any) -> Refusal | None:
        """Return this server's refusal of a request body, or None when it accepts it."""
        return check_llama(endpoint, body)

    def cors(self, origin: str | None) -> list[tuple[str, str]]:
        """The CORS headers every reply carries."""
        return [("Access-Control-Allow-Origin", origin or "")]

    def preflight(self, origin: str | None) -> Reply | None:
        """The answer to an OPTIONS request (before any key or loading check), if it has one."""
        return Reply(200, b"", (*self.cors(origin),
                                ("Access-Control-Allow-Credentials", "true"),
                                ("Access-Control-Allow-Methods", CORS_METHODS),
                                ("Access-Control-Allow-Headers", CORS_HEADERS),
                                ("Content-Type", "text/html")))

    def _middleware_error(self, status: int, message: str, error_type: str) -> Reply:
        # llama-server's HTTP layer (404, 401, 503) writes message, type, code in this order.
        return json_reply(status, {"error": {"message": message, "type": error_type,
                                             "code": status}})

    def not_found(self, method: str, path: str) -> Reply:
        """Return the reply for an unknown route."""
        return self._middleware_error(404, "File Not Found", "not_found_error")

    def loading(self) -> Reply:
        """Return the reply every route gives while the model loads."""
        return self._middleware_error(503, "Loading model", "unavailable_error")

    def unauthorized(self, presented: str | None = None) -> Reply:
        """Return the reply for a missing or wrong API key (presented: what was sent)."""
        return self._middleware_error(401, "Invalid API Key", "authentication_error")

    def parse_body(self, raw: bytes) -> tuple[Any, Reply | None]:
        """Decode a JSON request body, or return the reply to a body that is not JSON.

        The message is nlohmann::json's, found by tracing its parser (fakellama.json_errors).
        Python's own parser decides first, as it is much faster; the trace runs only for a
        body it refuses or one where the two parsers could disagree (a byte order mark, an
        escaped surrogate, NaN or Infinity, bytes that are not UTF-8).
        """
        if not raw.startswith(b"\xef\xbb\xbf") and not _SURROGATE_ESCAPE.search(raw):
            try:
                return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant,
                                  parse_float=_finite_float, parse_int=_json_int), None
            except (ValueError, UnicodeDecodeError):
                pass
        problem = parse_error_message(raw)
        if problem is not None:
            return None, self.error(400, problem, "invalid_request_error")
        text = raw.decode("utf-8-sig", errors="replace")
        try:
            return json.loads(text), None
        except ValueError:  # nlohmann::json stops at a NUL byte; Python reads on
            return json.JSONDecoder().raw_decode(text.lstrip(" \t\n\r"))[0], None

    def overflow(self, n_prompt: int, n_ctx: int, max_tokens: int | None = None
                 ) -> Refusal | None:
        """Return the refusal of a prompt that does not fit (None: it is truncated or fits).

        Asked when the prompt alone fills the context, and (for a server that counts the
        reply too) when prompt and max_tokens together exceed it.
        """
        if n_prompt < n_ctx:
            return None
        message = (f"request ({n_prompt} tokens) exceeds the available context size "
                   f"({n_ctx} tokens), try increasing it")
        return Refusal(400, message, "exceed_context_size_error",
                       {"n_prompt_tokens": n_prompt, "n_ctx": n_ctx})

    def builtin(self, endpoint: str) -> Builtin | None:
        """Return the model-free answer for an endpoint, if it has one."""
        return {
            "health": lambda info, body: json_reply(200, {"status": "ok"}),
            "models": _llama_models,
            "props": _llama_props,
            "metrics": _llama_metrics,
            "tokenize": _tokenize,
            "detokenize": _detokenize,
            "apply_template": _apply_template,
            "chat_tokens": lambda info, body: json_reply(200, {
                "input_tokens": count_prompt_tokens(body), "object": "response.input_tokens"}),
            "anthropic_tokens": lambda info, body: json_reply(200, {
                "input_tokens": count_prompt_tokens(anthropic_as_chat(body))}),
            "slots": _llama_slots,
            "lora_adapters": lambda info, body: json_reply(200, []),
            "embeddings": self._no_embeddings,
            "embedding": self._no_embeddings,
            "rerank": lambda info, body: self.error(
                501, "This server does not support reranking. Start it with `--reranking`",
                "not_supported_error"),
            "infill": lambda info, body: self.error(
                501, "Infill is not supported by this model: prefix token is missing. suffix "
                     "token is missing. middle token is missing. ", "not_supported_error"),
            "disabled": lambda info, body: json_reply(403, {"error": {
                "message": "this feature is disabled", "type": "feature_disabled"}}),
        }.get(endpoint)

    def _no_embeddings(self, info: ModelInfo, body: Any) -> Reply:
        """llama-server started without --embeddings (checked before the body is read)."""
        return self.error(501, "This server does not support embeddings. Start it with "
                               "`--embeddings`", "not_supported_error")

    def adapt_body(self, body: Any) -> Any:
        """Adapt a recorded llama-server JSON body to this personality."""
        return body

    def adapt_stream(self, payloads: list[str]) -> list[str]:
        """Adapt recorded llama-server stream payloads to this personality."""
        return payloads


def _now() -> int:
    return int(time.time())


def _llama_models(info: ModelInfo, body: Any) -> Reply:
    model = {"name": info.name, "model": info.name, "modified_at": "", "size": "", "digest": "",
             "type": "model", "description": "", "tags": [""], "capabilities": ["completion"],
             "parameters": "", "details": {"parent_model": "", "format": "gguf", "family": "",
                                           "families": [""], "parameter_size": "",
                                           "quantization_level": ""}}
    meta = {"vocab_type": 2, "n_vocab": 256, "n_ctx_train": info.ctx_size, "n_embd": info.n_embd,
            "n_params": 65536, "size": 262144}
    return json_reply(200, {"models": [model], "object": "list", "data": [
        {"id": info.name, "object": "model", "created": _now(), "owned_by": "llamacpp",
         "meta": meta}]})


def _llama_props(info: ModelInfo, body: Any) -> Reply:
    return json_reply(200, {
        "default_generation_settings": {"n_ctx": info.ctx_size, "params": {"n_predict": -1}},
        "total_slots": N_PARALLEL,
        "model_alias": info.name,
        "model_path": f"/models/{info.name}",
        "modalities": {"vision": False, "audio": False},
        "chat_template": CHAT_TEMPLATE,
        "chat_template_caps": {"supports_tools": True, "supports_tool_calls": True,
                               "supports_system_role": True, "supports_parallel_tool_calls": True},
        "bos_token": "", "eos_token": "<|im_end|>",
        "build_info": info.build_info,
    })


def _llama_metrics(info: ModelInfo, body: Any) -> Reply:
    if not info.metrics:
        return Personality().error(
            501, "This server does not support metrics endpoint. Start it with `--metrics`",
            "not_supported_error")
    lines = [
        "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.",
        "# TYPE llamacpp:prompt_tokens_total counter",
        "llamacpp:prompt_tokens_total 0",
        "# HELP llamacpp:tokens_predicted_total Number of generation tokens processed.",
        "# TYPE llamacpp:tokens_predicted_total counter",
        "llamacpp:tokens_predicted_total 0",
        "# HELP llamacpp:requests_processing Number of requests processing.",
        "# TYPE llamacpp:requests_processing gauge",
        "llamacpp:requests_processing 0",
    ]
    return text_reply(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")


def _llama_slots(info: ModelInfo, body: Any) -> Reply:
    # Idle slots; llama-server also lists each one's sampling "params" and "next_token"
    # state, which the fake (having no sampler) leaves out.
    return json_reply(200, [{"id": slot, "n_ctx": info.ctx_size, "speculative": False,
                             "is_processing": False} for slot in range(N_PARALLEL)])


def _tokenize(info: ModelInfo, body: Any) -> Reply:
    content = body.get("content", "") if isinstance(body, dict) else ""
    tokens: list[int] = []
    for part in content if isinstance(content, list) else [content]:
        # A list mixes text and token ids, as llama-server's tokenize_mixed reads it.
        tokens.extend(tokenize(part) if isinstance(part, str) else [int(part or 0)])
    if isinstance(body, dict) and body.get("with_pieces") is True:
        pieces = [{"id": t, "piece": detokenize([t])} for t in tokens]
        return json_reply(200, {"tokens": pieces})
    return json_reply(200, {"tokens": tokens})


def _detokenize(info: ModelInfo, body: Any) -> Reply:
    tokens = (body.get("tokens") if isinstance(body, dict) else None) or []
    return json_reply(200, {"content": detokenize([int(t) for t in tokens])})


def _apply_template(info: ModelInfo, body: Any) -> Reply:
    return json_reply(200, {"prompt": render_chat(body.get("messages") or [], body.get("tools"))})


def _strip_llama_extras(body: Any) -> Any:
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "timings"}
    return body


def _version_label(persona: Personality, asked: str | None) -> str:
    """The emulated version a ``@VERSION`` names: a label, the full version, or current."""
    labels = list(persona.VERSIONS)
    if asked is None or asked in ("current", "latest"):
        return labels[-1]
    for label, full in persona.VERSIONS.items():
        if asked in (label, full) or full.startswith(asked + "."):
            return label
    raise ValueError(f"personality {persona.name!r} emulates versions "
                     f"{', '.join(labels)} (or 'current'), not {asked!r}")


class _NotLlamaServer(Personality):
    """What every other server shares: no llama-server checks, CORS or connection closing."""

    closes_on_error = False
    # Route prefixes that take a model name as the rest of the path -> endpoint name.
    model_routes: dict[str, str] = {}

    def endpoint(self, method: str, path: str) -> str | None:
        """Routes, plus those ending in a model name (``/v1/models/{model}``)."""
        found = super().endpoint(method, path)
        if found is None and method in ("GET", "HEAD"):
            for prefix, name in self.model_routes.items():
                if path.startswith(prefix) and len(path) > len(prefix):
                    return name
        return found

    def path_model(self, path: str) -> str:
        """The model name at the end of a model route ("" for other routes)."""
        for prefix in self.model_routes:
            if path.startswith(prefix):
                return path[len(prefix):]
        return ""

    def validate(self, endpoint: str, body: Any) -> Refusal | None:
        """A plain 400 for a body of the wrong shape (these servers' own wording differs)."""
        problem = check_basic(endpoint, body)
        return Refusal(400, problem, "invalid_request_error") if problem else None

    def parse_body(self, raw: bytes) -> tuple[Any, Reply | None]:
        """Decode a JSON request body, or a plain 400 naming where it stops being JSON."""
        try:
            return json.loads(raw.decode("utf-8", errors="replace")), None
        except json.JSONDecodeError as exc:
            return None, self.error(400, f"invalid JSON body: {exc}", "invalid_request_error")

    def cors(self, origin: str | None) -> list[tuple[str, str]]:
        """No CORS headers."""
        return []

    def preflight(self, origin: str | None) -> Reply | None:
        """No special OPTIONS answer."""
        return None

    def adapt_body(self, body: Any) -> Any:
        """Drop llama-server's timings."""
        return _strip_llama_extras(body)

    def adapt_stream(self, payloads: list[str]) -> list[str]:
        """Drop llama-server's timings from chunks."""
        return [p if p == "[DONE]" else dumps(self.adapt_body(json.loads(p))) for p in payloads]


# -- Ollama -------------------------------------------------------------------------------
# Read from github:ollama/ollama at tags v0.12.0 and v0.32.15 (the newest release when
# this was written); each rule below names its file and line at those tags.
OLLAMA_012 = "github:ollama/ollama@v0.12.0"
OLLAMA_CURRENT = "github:ollama/ollama@v0.32.15"
_OLLAMA_SHIFT_OFF = ("the prompt is longer than the context length currently available to the "
                     "model; shorten the prompt, adjust the context length in settings, or use "
                     "a model with a longer context length")


class Ollama(_NotLlamaServer):
    """Ollama: root banner, /api/* routes (native chat included), OpenAI API under /v1.

    Versions: 0.12 and 0.32 (current). What differs: the ``type`` of a /v1 error raised by
    a handler (0.12's BaseWriter.writeError always encodes NewError(500, ...), so
    ``api_error`` whatever the status, openai/openai.go:697-706; since v0.18.0 it passes
    the status, so 404 is ``not_found_error``, middleware/openai.go:64-73 at v0.32.15),
    and an over-long prompt with context shift off (``context_shift=off``), a 400 since
    v0.30.9 (llm/llama_server.go:295-299 at v0.32.15) where 0.12 always truncates.
    """

    name = "ollama"
    VERSIONS = {"0.12": "0.12.0", "0.32": "0.32.15"}
    OPTIONS = {"context_shift": "on"}
    # The model loads on the first request that needs it, which waits (server/sched.go);
    # the server itself answers from the start.
    loading_behaviour = "hold"
    # Ollama has no API key setting: it has no authentication of its own.
    takes_api_key = False
    no_key_reason = "Ollama has no API key setting: it has no authentication of its own"
    routes = {
        ("GET", "/"): "root",
        ("HEAD", "/"): "root",
        ("GET", "/api/version"): "version",
        ("GET", "/api/tags"): "tags",
        ("GET", "/api/ps"): "ps",
        ("POST", "/api/show"): "show",
        ("POST", "/api/chat"): "ollama_chat",  # native API: fakellama/ollama_native.py
        ("POST", "/api/generate"): "ollama_generate",
        ("POST", "/api/embed"): "ollama_embed",
        ("POST", "/v1/embeddings"): "embeddings",
        ("GET", "/v1/models"): "models",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/v1/completions"): "oai_completion",
    }
    model_routes = {"/v1/models/": "model_one"}
    public_paths = frozenset(p for _, p in routes)

    @property
    def source(self) -> str:
        """The repository and tag this version's rules were read from."""
        return OLLAMA_012 if self.version == "0.12" else OLLAMA_CURRENT

    def error(self, status: int, message: str, error_type: str, **extra: Any) -> Reply:
        """Ollama's OpenAI-layer error, typed by status as openai.NewError types it.

        openai/openai.go:209-220 (v0.12.0): 400 invalid_request_error, 404
        not_found_error, anything else api_error; llama-server's types never pass through.
        """
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return json_reply(status, {"error": {"message": message, "type": kind,
                                             "param": None, "code": None}})

    def handler_error(self, status: int, message: str) -> Reply:
        """A /v1 error a handler raised, through BaseWriter.writeError (typed per version)."""
        if self.version == "0.12":
            return sourced(json_reply(status, {"error": {
                "message": message, "type": "api_error", "param": None, "code": None}}),
                f"{OLLAMA_012} openai/openai.go:697-706")
        return sourced(self.error(status, message, ""),
                       f"{OLLAMA_CURRENT} middleware/openai.go:64-73")

    def not_found(self, method: str, path: str) -> Reply:
        """Return Go's plain-text 404 (gin's default; no 405 either)."""
        return text_reply(404, "404 page not found")

    def validate(self, endpoint: str, body: Any) -> Refusal | None:
        """ChatMiddleware's checks, then ChatHandler's model lookup."""
        refusal = super().validate(endpoint, body)
        if refusal is not None or not isinstance(body, dict):
            return refusal
        if endpoint == "chat" and body.get("messages") == []:
            line = ("openai/openai.go:1042" if self.version == "0.12"
                    else "middleware/openai.go:456")
            return Refusal(400, "[] is too short - 'messages'", "invalid_request_error",
                           {"source": f"{self.source} {line}"})
        if endpoint == "chat":
            # Thinking asked of a model without the capability (the fake's model has none).
            return _ollama_thinking_refusal(body)
        return None

    def model_refusal(self, model: Any, info: ModelInfo) -> Reply | None:
        """ChatHandler: 400 "model is required", 404 "model 'x' not found" (handler errors).

        server/routes.go:1726-1740 (v0.12.0), :2477-2485 (v0.32.15).
        """
        if not model:
            return self.handler_error(400, "model is required")
        if model not in (info.name, f"{info.name}:latest"):
            return self.handler_error(404, f"model '{model}' not found")
        return None

    def builtin(self, endpoint: str) -> Builtin | None:
        """Return Ollama's model-free answers."""
        return {
            "root": lambda info, body: text_reply(200, "Ollama is running"),
            "version": lambda info, body: json_reply(200, {"version": self.reported_version}),
            "tags": _ollama_tags,
            "ps": _ollama_ps,
            "show": _ollama_show,
            "models": lambda info, body: json_reply(200, {"object": "list", "data": [
                {"id": info.name, "object": "model", "created": _now(), "owned_by": "library"}]}),
            "model_one": self._model_one,
        }.get(endpoint)

    def _model_one(self, info: ModelInfo, body: Any) -> Reply:
        """GET /v1/models/{model}: RetrieveMiddleware over ShowHandler.

        openai/openai.go:933 (v0.12.0), middleware/openai.go:339 (v0.32.15).
        """
        model = body.get("model") if isinstance(body, dict) else None
        if model not in (info.name, f"{info.name}:latest"):
            return self.handler_error(404, f"model '{model}' not found")
        return json_reply(200, {"id": model, "object": "model", "created": _now(),
                                "owned_by": "library"})

    def overflow(self, n_prompt: int, n_ctx: int, max_tokens: int | None = None
                 ) -> Refusal | None:
        """Ollama keeps the end of an over-long prompt and answers; 400 only with shift off.

        v0.12.0: runner/ollamarunner/runner.go:159 logs "truncating input prompt" and goes
        on. v0.32.15: the same, unless context shift is off for the model
        (llm/llama_server.go:295-299): then 400 with the message below.
        """
        if n_prompt < n_ctx or self.version == "0.12" or self.options["context_shift"] != "off":
            return None
        return Refusal(400, _OLLAMA_SHIFT_OFF, "invalid_request_error",
                       {"source": f"{OLLAMA_CURRENT} llm/llama_server.go:295-299"})

    def adapt_body(self, body: Any) -> Any:
        """Rename reasoning_content to reasoning, drop timings; tool calls keep an index."""
        body = _strip_llama_extras(body)
        if isinstance(body, dict) and "system_fingerprint" in body:
            body = dict(body, system_fingerprint="fp_ollama")
        return _ollama_message_quirks(body)

    def adapt_stream(self, payloads: list[str]) -> list[str]:
        """Send tool calls whole, each with its index, and reasoning as `reasoning`.

        Ollama's runner parses a call only once it is complete, and its ToolCall struct
        always writes ``index`` (openai/openai.go:169-177 at v0.12.0, :185 at v0.32.15).
        """
        out: list[str] = []
        pending: dict[int, dict[str, Any]] = {}
        for payload in payloads:
            if payload == "[DONE]":
                out.append(payload)
                continue
            chunk = self.adapt_body(json.loads(payload))
            choices = chunk.get("choices") or []
            delta = choices[0].get("delta", {}) if choices else {}
            calls = delta.pop("tool_calls", None) if isinstance(delta, dict) else None
            if calls:
                for position, call in enumerate(calls):
                    index = call.get("index", position)
                    slot = pending.setdefault(index, {"id": "", "index": index,
                                                      "type": "function",
                                                      "function": {"name": "", "arguments": ""}})
                    slot["id"] = call.get("id") or slot["id"]
                    function = call.get("function") or {}
                    slot["function"]["name"] += function.get("name") or ""
                    slot["function"]["arguments"] += function.get("arguments") or ""
                if not {k for k in delta if k != "role"}:
                    continue
            if choices and choices[0].get("finish_reason") and pending:
                whole = dict(chunk)
                whole["choices"] = [{"index": 0, "delta": {
                    "role": "assistant", "content": "",
                    "tool_calls": [pending[i] for i in sorted(pending)]}, "finish_reason": None}]
                out.append(dumps(whole))
                pending = {}
            out.append(dumps(chunk))
        return out


def _ollama_message_quirks(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    body = dict(body)
    choices = []
    for choice in body.get("choices") or []:
        choice = dict(choice)
        for key in ("message", "delta"):
            part = choice.get(key)
            if isinstance(part, dict):
                part = dict(part)
                if "reasoning_content" in part:
                    part["reasoning"] = part.pop("reasoning_content")
                if isinstance(part.get("tool_calls"), list) and key == "message":
                    # toToolCalls sets Index on every call (openai/openai.go:246, v0.12.0).
                    part["tool_calls"] = [dict(c, index=c.get("index", i))
                                          for i, c in enumerate(part["tool_calls"])]
                choice[key] = part
        choices.append(choice)
    if "choices" in body:
        body["choices"] = choices
    return body


def _ollama_thinking_refusal(body: dict[str, Any]) -> Refusal | None:
    """Ollama's 400 for thinking asked of a model without the capability (server/routes.go).

    Its OpenAI layer turns ``reasoning_effort`` (or ``reasoning.effort``) into ``think``;
    any value but "none" asks for thinking.
    """
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        effort = reasoning["effort"]
    if not isinstance(effort, str) or effort in ("", "none"):
        return None
    model = body.get("model") if isinstance(body.get("model"), str) else ""
    return Refusal(400, f"{json.dumps(model, ensure_ascii=False)} does not support thinking",
                   "invalid_request_error")


def _ollama_tags(info: ModelInfo, body: Any) -> Reply:
    return json_reply(200, {"models": [{
        "name": info.name, "model": info.name, "modified_at": "2025-01-01T00:00:00Z",
        "size": 262144, "digest": "0" * 64,
        "details": {"parent_model": "", "format": "gguf", "family": "llama",
                    "families": ["llama"], "parameter_size": "65K",
                    "quantization_level": "F32"}}]})


def _ollama_ps(info: ModelInfo, body: Any) -> Reply:
    # The loaded models, with the context Ollama allocated (PsHandler, server/routes.go:
    # 1668-1691 at v0.12.0: ContextLength = the runner's NumCtx). None while loading.
    if not info.loaded:
        return json_reply(200, {"models": []})
    tags = json.loads(_ollama_tags(info, body).body)["models"][0]
    return json_reply(200, {"models": [{
        "name": tags["name"], "model": tags["model"], "size": tags["size"],
        "digest": tags["digest"], "details": tags["details"],
        "expires_at": "2099-01-01T00:00:00Z", "size_vram": 0,
        "context_length": info.ctx_size}]})


def _ollama_show(info: ModelInfo, body: Any) -> Reply:
    # ShowHandler (server/routes.go:942-975 at v0.12.0, :1300 at v0.32.15): "model" or its
    # older name "name"; neither is 400 "model is required", an unknown one 404.
    model = (body.get("model") or body.get("name")) if isinstance(body, dict) else None
    if not model:
        return json_reply(400, {"error": "model is required"})
    if model not in (info.name, f"{info.name}:latest"):
        return json_reply(404, {"error": f"model '{model}' not found"})
    return json_reply(200, {
        "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
        "details": {"parent_model": "", "format": "gguf", "family": "llama",
                    "families": ["llama"], "parameter_size": "65K", "quantization_level": "F32"},
        "model_info": {"general.architecture": "llama",
                       "llama.context_length": info.ctx_size},
        "capabilities": ["completion", "tools"],
    })


# -- vLLM ---------------------------------------------------------------------------------
# Read from vLLM 0.10.0 and 0.33.0 as published (the files of github:vllm-project/vllm at
# tags v0.10.0 and v0.33.0); paths are under vllm/entrypoints/ unless they say otherwise.
VLLM_010 = "github:vllm-project/vllm@v0.10.0"
VLLM_CURRENT = "github:vllm-project/vllm@v0.33.0"
_VLLM_MEDIA = "Unsupported Media Type: Only 'application/json' is allowed"
_VLLM_STREAM_OPTIONS = "Stream options can only be defined when `stream=True`."
_VLLM_AUTO_TOOLS = ('"auto" tool choice requires --enable-auto-tool-choice and '
                    "--tool-call-parser to be set")
# The routes that declare Depends(validate_json_request) (openai/api_server.py at v0.10.0).
_VLLM_JSON_ONLY = frozenset({"chat", "oai_completion", "tokenize", "detokenize"})


class Vllm(_NotLlamaServer):
    """vLLM: empty /health, /version, max_model_len in /v1/models, FastAPI error shapes.

    Versions: 0.10 (flat ``{"object": "error", ...}`` envelope, the old overflow wording,
    ``guided_grammar``) and 0.33 (current: the nested ``{"error": {...}}`` envelope, the
    input-token overflow wording, ``structured_outputs``). Option ``tool_parser``: the
    ``--tool-call-parser`` it was started with (with ``--enable-auto-tool-choice``);
    empty means neither flag, so a request with tools is refused.
    """

    name = "vllm"
    VERSIONS = {"0.10": "0.10.0", "0.33": "0.33.0"}
    OPTIONS = {"tool_parser": "hermes"}
    # The API server starts listening only once the engine has loaded the model
    # (openai/api_server.py run_server: build_async_engine_client before serve_http).
    loading_behaviour = "absent"
    routes = {
        ("GET", "/health"): "health",
        ("GET", "/version"): "version",
        ("GET", "/v1/models"): "models",
        ("GET", "/metrics"): "metrics",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/v1/completions"): "oai_completion",
        ("POST", "/v1/embeddings"): "embeddings",
        ("POST", "/tokenize"): "tokenize",
        ("POST", "/detokenize"): "detokenize",
    }
    public_paths = frozenset({"/health", "/version", "/metrics"})

    @property
    def current(self) -> bool:
        """Whether this is the current vLLM (0.11 on) rather than 0.10."""
        return self.version != "0.10"

    @property
    def source(self) -> str:
        """The repository and tag this version's rules were read from."""
        return VLLM_CURRENT if self.current else VLLM_010

    def error(self, status: int, message: str, error_type: str, **extra: Any) -> Reply:
        """vLLM's ErrorResponse: flat up to 0.10, nested under "error" since.

        openai/protocol.py:80-85 (v0.10.0); serve/engine/protocol.py:79-87 (v0.33.0).
        """
        kind = error_type if error_type in _VLLM_TYPES else {
            400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError",
            503: "ServiceUnavailableError"}.get(status, "InternalServerError")
        param = extra.get("param")
        if self.current:
            return json_reply(status, {"error": {"message": message, "type": kind,
                                                 "param": param, "code": status}})
        return json_reply(status, {"object": "error", "message": message, "type": kind,
                                   "param": param, "code": status})

    def not_found(self, method: str, path: str) -> Reply:
        """Starlette's 404, or its 405 for a known route asked with another method."""
        allowed = sorted({m for m, p in self.routes if p == path})
        if allowed:
            if "GET" in allowed:
                allowed.append("HEAD")
            reply = json_reply(405, {"detail": "Method Not Allowed"},
                               (("Allow", ", ".join(sorted(allowed))),))
            return sourced(reply, "starlette routing.py Route.handle (no route for the method)")
        return json_reply(404, {"detail": "Not Found"})

    def guards(self, method: str, path: str) -> bool:
        """Only /v1 paths (0.10; 0.33 adds /v2, /inference, /cohere), never OPTIONS.

        openai/api_server.py:1245 (v0.10.0); serve/middleware/authenticate.py:11 (v0.33.0).
        """
        prefixes = ("/v1", "/v2", "/inference", "/cohere") if self.current else ("/v1",)
        return method != "OPTIONS" and path.startswith(prefixes)

    def key_matches(self, headers: Any, api_key: str) -> bool:
        """Only ``Authorization: Bearer <key>`` (no X-Api-Key); 0.33 reads the scheme in any case.

        openai/api_server.py:1245-1246 (v0.10.0); serve/middleware/authenticate.py:30-45.
        """
        value = headers.get("Authorization") or ""
        if not self.current:
            return bool(value == f"Bearer {api_key}")
        scheme, _, param = value.partition(" ")
        return scheme.lower() == "bearer" and param == api_key

    def unauthorized(self, presented: str | None = None) -> Reply:
        """Return vLLM's 401 (the same body in both versions)."""
        return json_reply(401, {"error": "Unauthorized"})

    def check_request(self, endpoint: str, headers: Any, raw: bytes) -> Reply | None:
        """FastAPI reads a JSON (or untyped) body first, then validate_json_request runs.

        A body sent as JSON that is not JSON is FastAPI's json_invalid error; then a
        Content-Type other than application/json is refused (openai/api_server.py:
        318-323 at v0.10.0; serve/utils/api_utils.py:310-316 at v0.33.0). Both come back
        through vLLM's RequestValidationError handler.
        """
        if endpoint not in _VLLM_JSON_ONLY:
            return None
        content_type = (headers.get("Content-Type") or "").lower()
        media = content_type.split(";", 1)[0].strip()
        if raw and (not media or media == "application/json" or media.endswith("+json")):
            try:
                json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                pass
            except json.JSONDecodeError as exc:
                error = {"type": "json_invalid", "loc": ("body", exc.pos),
                         "msg": "JSON decode error", "input": {}, "ctx": {"error": exc.msg}}
                return self._validation_error(error)
        if media != "application/json":
            return self._validation_error(_VLLM_MEDIA)
        return None

    def _validation_error(self, error: Any) -> Reply:
        """vLLM's answer to a RequestValidationError holding one error.

        v0.10.0 (openai/api_server.py:1485-1499, FastAPI 0.116): the message is str() of
        the error list. v0.33.0 (serve/exception_handling/handlers/validation.py:149-195):
        "1 validation error:" and the error with its input summarised and its location
        joined by dots, which is also the param.
        """
        if not self.current:
            return sourced(self.error(400, str([error]), "Bad Request"),
                           f"{VLLM_010} vllm/entrypoints/openai/api_server.py:1485-1499")
        param = None
        if isinstance(error, dict):
            error = dict(error)
            param = ".".join(str(p) for p in error["loc"])
            error["loc"] = param
            error["input"] = _summarised(error["input"])
        return sourced(self.error(400, f"1 validation error:\n  {error}", "Bad Request",
                                  param=param),
                       f"{VLLM_CURRENT} vllm/entrypoints/serve/exception_handling/handlers/"
                       "validation.py:149-195")

    def parse_body(self, raw: bytes) -> tuple[Any, Reply | None]:
        """The body, already checked as JSON by check_request."""
        try:
            return json.loads(raw.decode("utf-8", errors="replace")), None
        except json.JSONDecodeError as exc:
            error = {"type": "json_invalid", "loc": ("body", exc.pos),
                     "msg": "JSON decode error", "input": {}, "ctx": {"error": exc.msg}}
            return None, self._validation_error(error)

    def validate(self, endpoint: str, body: Any) -> Refusal | None:
        """The request model's validators, then the chat handler's own checks."""
        refusal = super().validate(endpoint, body)
        if refusal is not None or not isinstance(body, dict):
            return refusal
        if endpoint in ("chat", "oai_completion") and body.get("stream_options") \
                and not body.get("stream"):
            return self._stream_options_refusal(body)
        return None

    def _stream_options_refusal(self, body: dict[str, Any]) -> Refusal:
        """stream_options without stream: a pydantic error (0.10), a VLLMValidationError since.

        openai/protocol.py:775-778 (v0.10.0); openai/chat_completion/protocol.py:858-867
        (v0.33.0) raises VLLMValidationError(parameter="stream_options"), which is not a
        ValueError, so it reaches vllm_error_handler as a 400 with that param.
        """
        if not self.current:
            error = {"type": "value_error", "loc": ("body",),
                     "msg": f"Value error, {_VLLM_STREAM_OPTIONS}", "input": body,
                     "ctx": {"error": ValueError(_VLLM_STREAM_OPTIONS)}}
            return Refusal(400, str([error]), "Bad Request",
                           {"source": f"{VLLM_010} vllm/entrypoints/openai/protocol.py:775-778"})
        return Refusal(400, f"{_VLLM_STREAM_OPTIONS} (parameter=stream_options)",
                       "BadRequestError",
                       {"param": "stream_options", "source": f"{VLLM_CURRENT} vllm/entrypoints/"
                        "openai/chat_completion/protocol.py:858-867"})

    def model_refusal(self, model: Any, info: ModelInfo) -> Reply | None:
        """_check_model: no model is the served one; another is 404.

        openai/serving_engine.py:430-453 (v0.10.0); serve/engine/serving.py:55-83 (v0.33.0),
        which adds the served names and param "model".
        """
        if not model or model == info.name:
            return None
        if self.current:
            return sourced(self.error(404, f"The model `{model}` does not exist. Valid aliases: "
                                           f"{info.name}.", "NotFoundError", param="model"),
                           f"{VLLM_CURRENT} vllm/entrypoints/serve/engine/serving.py:75-83")
        return sourced(self.error(404, f"The model `{model}` does not exist.", "NotFoundError"),
                       f"{VLLM_010} vllm/entrypoints/openai/serving_engine.py:450-453")

    def tools_refusal(self, body: dict[str, Any]) -> Reply | None:
        """Tools on a server started without a tool-call parser.

        A request with tools and no tool_choice means "auto" (check_tool_usage). 0.10
        refuses only "auto" (openai/serving_chat.py:167-175; "required" and a named
        function use guided decoding); 0.33 also refuses those
        (renderers/online_renderer.py:268-290).
        """
        if self.options["tool_parser"]:
            return None
        choice = body.get("tool_choice")
        if choice is None and body.get("tools"):
            choice = "auto"
        if choice in (None, "none"):
            return None
        if choice == "auto":
            message = _VLLM_AUTO_TOOLS
        elif not self.current:
            return None
        elif isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            message = f'tool_choice=function "{name}" requires --tool-call-parser to be set'
        else:
            message = f'tool_choice="{choice}" requires --tool-call-parser to be set'
        line = ("vllm/renderers/online_renderer.py:268-290" if self.current
                else "vllm/entrypoints/openai/serving_chat.py:167-175")
        return sourced(self.error(400, message, "BadRequestError"), f"{self.source} {line}")

    def overflow(self, n_prompt: int, n_ctx: int, max_tokens: int | None = None
                 ) -> Refusal | None:
        """The prompt (and, up to 0.10, the reply budget) against max_model_len.

        v0.10.0 (openai/serving_engine.py:613-631): prompt + max_tokens over the length is
        refused, worded with both; the chat handler appends the exception's cause, " None"
        (openai/serving_chat.py:201-204). v0.33.0 (renderers/params.py:531-550): only a
        prompt longer than the length is refused; the tokenizer stops at length + 1
        tokens, so the count reads "at least" that; max_tokens is clamped to what is left.
        """
        if not self.current:
            if max_tokens is None:
                if n_prompt < n_ctx:
                    return None
                message = (f"This model's maximum context length is {n_ctx} tokens. However, "
                           f"you requested {n_prompt} tokens in the messages, Please reduce "
                           f"the length of the messages.")
            elif n_prompt + max_tokens > n_ctx:
                message = (f"This model's maximum context length is {n_ctx} tokens. However, "
                           f"you requested {max_tokens + n_prompt} tokens ({n_prompt} in the "
                           f"messages, {max_tokens} in the completion). Please reduce the "
                           f"length of the messages or completion.")
            else:
                return None
            return Refusal(400, message + " None", "BadRequestError",
                           {"source": f"{VLLM_010} vllm/entrypoints/openai/"
                                      "serving_engine.py:613-631"})
        if n_prompt <= n_ctx:
            return None
        counted = n_ctx + 1
        message = (f"This model's maximum context length is {n_ctx} tokens. However, your "
                   f"prompt contains at least {counted} input tokens, which exceeds this limit "
                   f"even without any output tokens. Please reduce the length of the input "
                   f"prompt. (parameter=input_tokens, value={counted})")
        return Refusal(400, message, "BadRequestError",
                       {"param": "input_tokens",
                        "source": f"{VLLM_CURRENT} vllm/renderers/params.py:531-550"})

    def as_llama_request(self, body: Any) -> Any:
        """The grammar in the field this version reads, as llama-server's ``grammar``.

        0.10 reads ``guided_grammar`` (openai/protocol.py:504); 0.11 on reads
        ``structured_outputs.grammar`` (openai/chat_completion/protocol.py:397 at v0.33.0).
        Each ignores the other's field, and llama-server's ``grammar``, as an unknown extra
        field (model_config extra="allow", logged and dropped).
        """
        if not isinstance(body, dict):
            return body
        out = {k: v for k, v in body.items()
               if k not in ("grammar", "guided_grammar", "structured_outputs")}
        if self.current:
            outputs = body.get("structured_outputs")
            grammar = outputs.get("grammar") if isinstance(outputs, dict) else None
        else:
            grammar = body.get("guided_grammar")
        if isinstance(grammar, str):
            out["grammar"] = grammar
        return out

    def builtin(self, endpoint: str) -> Builtin | None:
        """Return vLLM's model-free answers."""
        return {
            "health": lambda info, body: Reply(200, b"", ()),
            "version": lambda info, body: json_reply(200, {"version": self.reported_version}),
            "models": lambda info, body: json_reply(200, {"object": "list", "data": [{
                "id": info.name, "object": "model", "created": _now(), "owned_by": "vllm",
                "root": info.name, "parent": None, "max_model_len": info.ctx_size,
                "permission": []}]}),
            "metrics": lambda info, body: text_reply(200, "vllm:num_requests_running 0.0\n"),
            "tokenize": _vllm_tokenize,
            "detokenize": lambda info, body: json_reply(200, {
                "prompt": detokenize([int(t) for t in body.get("tokens") or []])}),
        }.get(endpoint)


# The error types vLLM writes itself (anything else asked of it is typed by status).
_VLLM_TYPES = frozenset({"BadRequestError", "NotFoundError", "Bad Request", "Unauthorized",
                         "InternalServerError", "ServiceUnavailableError"})


def _summarised(value: Any) -> Any:
    """A validation error's input as vLLM 0.33 reports it (validation.py:85-107)."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "...[truncated]"
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return f"<{type(value).__name__} of {len(value)} items>"
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "...[truncated]"


# -- LM Studio ----------------------------------------------------------------------------
# LM Studio is closed source: its documentation (github:lmstudio-ai/docs at c6854fb, served
# at https://lmstudio.ai/docs) and what its bug tracker shows it sending are the sources.
LMSTUDIO_DOCS = "github:lmstudio-ai/docs@c6854fb"
LMSTUDIO_TRACKER = "https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues"
_LMSTUDIO_NO_TOKEN = (
    "An LM Studio API token is required to make requests to this server, but none was "
    "provided using the Authorization header using the 'Bearer' scheme (i.e., "
    "'Authorization: Bearer $LM_API_TOKEN'). Learn more at: "
    "https://lmstudio.ai/docs/developer/core/authentication.")


def _vllm_tokenize(info: ModelInfo, body: Any) -> Reply:
    """vLLM's /tokenize: a ``prompt``, or chat ``messages`` (and ``tools``) rendered first.

    A chat is rendered with the generation prompt unless ``add_generation_prompt`` is
    false, as vLLM's TokenizeChatRequest does; the count then equals the prompt tokens a
    chat completion of the same messages reports.
    """
    if isinstance(body.get("messages"), list):
        text = render_chat(body["messages"], body.get("tools"))
        if body.get("add_generation_prompt") is False:
            text = text.removesuffix(GENERATION_PROMPT)
    else:
        text = str(body.get("prompt", ""))
    tokens = tokenize(text)
    strs = [detokenize([t]) for t in tokens] if body.get("return_token_strs") else None
    return json_reply(200, {"count": len(tokens), "max_model_len": info.ctx_size,
                            "tokens": tokens, "token_strs": strs})


class LmStudio(_NotLlamaServer):
    """LM Studio: /api/v0/models with max_context_length and state, OpenAI API under /v1.

    Versions: 0.3 (no authentication; "Trying to keep the first N tokens ..." when a
    prompt overflows) and 0.4 (API tokens, when required in its settings; "... (n_keep:
    N>= n_ctx: M) ..." on overflow). Both answer an unknown route 200 with an error body.
    """

    name = "lmstudio"
    # LM Studio reports no version over HTTP: these are the releases the sources show.
    VERSIONS = {"0.3": "0.3.14", "0.4": "0.4.18"}
    # Just-in-time loading: the first request for a model loads it and then is answered
    # (1_developer/0_core/ttl-and-auto-evict.md: "the first request to a model will load it").
    loading_behaviour = "hold"
    routes = {
        ("GET", "/v1/models"): "models",
        ("GET", "/api/v0/models"): "models_v0",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/api/v0/chat/completions"): "chat",
        ("POST", "/v1/completions"): "oai_completion",
        ("POST", "/v1/embeddings"): "embeddings",
        ("POST", "/api/v0/embeddings"): "embeddings",
        ("POST", "/api/v0/completions"): "oai_completion",
    }
    model_routes = {"/api/v0/models/": "model_v0"}
    public_paths = frozenset(p for _, p in routes)

    def __init__(self, version: str | None = None,
                 options: dict[str, str] | None = None) -> None:
        """API tokens exist from 0.4.0 (1_developer/0_core/authentication.mdx)."""
        super().__init__(version, options)
        self.takes_api_key = self.version != "0.3"
        if not self.takes_api_key:
            self.no_key_reason = ("LM Studio has API tokens only from 0.4.0 (lmstudio-ai/docs "
                                  "1_developer/0_core/authentication.mdx)")

    def error(self, status: int, message: str, error_type: str, **extra: Any) -> Reply:
        """Return LM Studio's error reply: ``{"error": "<text>"}``."""
        return json_reply(status, {"error": message})

    def not_found(self, method: str, path: str) -> Reply:
        """200 with an error, as LM Studio's Express server answers any unknown route.

        Seen in 0.3.14 (#618, with the headers: 200, application/json; charset=utf-8) and
        0.4.17 (#2085: "Unexpected endpoint or method. (GET /v1/models). Returning 200
        anyway") of its bug tracker.
        """
        return sourced(json_reply(200, {"error": f"Unexpected endpoint or method. "
                                                 f"({method} {path})"}),
                       f"{LMSTUDIO_TRACKER}/618 and /2085")

    def guards(self, method: str, path: str) -> bool:
        """Every request, once "Require Authentication" is on (0.4 on)."""
        return True

    def key_matches(self, headers: Any, api_key: str) -> bool:
        """Only ``Authorization: Bearer <token>``."""
        return bool(headers.get("Authorization") == f"Bearer {api_key}")

    def unauthorized(self, presented: str | None = None) -> Reply:
        """LM Studio 0.4's refusal of a missing or an unknown token.

        Bodies as its server log shows them: github.com/agustif/opencode-lmstudio/issues/41
        (0.4.18, no token); an unknown token's message (only its first ten characters
        echoed) as users quote it. The status is 401.
        """
        token = (presented or "").removeprefix("Bearer ").strip()
        message = (f"Malformed LM Studio API token provided: {token[:10]}... Ensure you are "
                   "using a valid token." if token else _LMSTUDIO_NO_TOKEN)
        return sourced(json_reply(401, {"error": {"type": "invalid_request",
                                                  "code": "invalid_api_key",
                                                  "message": message}}),
                       "https://github.com/agustif/opencode-lmstudio/issues/41")

    def overflow(self, n_prompt: int, n_ctx: int, max_tokens: int | None = None
                 ) -> Refusal | None:
        """A prompt over the loaded context, in each version's words (400).

        0.3: #546 (0.3.13) of its tracker, body as in github.com/dyad-sh/dyad/issues/925;
        0.4: github.com/Gitlawb/openclaude/issues/353.
        """
        if n_prompt < n_ctx:
            return None
        if self.version == "0.3":
            return Refusal(400, f"Trying to keep the first {n_prompt} tokens when context the "
                                f"overflows. However, the model is loaded with context length "
                                f"of only {n_ctx} tokens, which is not enough. Try to load the "
                                f"model with a larger context length, or provide a shorter "
                                f"input", "invalid_request_error",
                           {"source": f"{LMSTUDIO_TRACKER}/546"})
        return Refusal(400, f"The number of tokens to keep from the initial prompt is greater "
                            f"than the context length (n_keep: {n_prompt}>= n_ctx: {n_ctx}). "
                            f"Try to load the model with a larger context length, or provide "
                            f"a shorter input.", "invalid_request_error",
                       {"source": "https://github.com/Gitlawb/openclaude/issues/353"})

    def builtin(self, endpoint: str) -> Builtin | None:
        """Return LM Studio's model-free answers."""
        return {
            "models": lambda info, body: json_reply(200, {"data": [
                {"id": entry["id"], "object": "model", "owned_by": "organization_owner"}
                for entry in _lmstudio_models(info)], "object": "list"}),
            "models_v0": lambda info, body: json_reply(200, {
                "object": "list", "data": _lmstudio_models(info)}),
            "model_v0": _lmstudio_model,
        }.get(endpoint)


def _lmstudio_models(info: ModelInfo) -> list[dict[str, Any]]:
    """GET /api/v0/models: every downloaded model, loaded or not, embeddings included.

    Shaped as 1_developer/2_rest/endpoints.mdx shows it: a not-loaded LLM, the fake's model
    (loaded, unless it is still loading), and a not-loaded embedding model; no loaded
    context length is listed, only each model's maximum.
    """
    return [
        {"id": "fakellama-not-loaded-llm", "object": "model", "type": "llm",
         "publisher": "fakellama", "arch": "llama", "compatibility_type": "gguf",
         "quantization": "Q4_K_M", "state": "not-loaded", "max_context_length": 131072},
        {"id": info.name, "object": "model", "type": "llm", "publisher": "fakellama",
         "arch": "llama", "compatibility_type": "gguf", "quantization": "F32",
         "state": "loaded" if info.loaded else "not-loaded",
         "max_context_length": info.ctx_size},
        {"id": "text-embedding-fakellama", "object": "model", "type": "embeddings",
         "publisher": "fakellama", "arch": "nomic-bert", "compatibility_type": "gguf",
         "quantization": "Q4_0", "state": "not-loaded", "max_context_length": 2048},
    ]


def _lmstudio_model(info: ModelInfo, body: Any) -> Reply:
    """GET /api/v0/models/{model} (endpoints.mdx): one entry of the list."""
    model = body.get("model") if isinstance(body, dict) else None
    for entry in _lmstudio_models(info):
        if entry["id"] == model:
            return json_reply(200, entry)
    # LM Studio's answer for a model it does not have is not documented: fakellama's own.
    return json_reply(404, {"error": f"fakellama: no model {model!r}; LM Studio's answer for "
                                     "an unknown model is not documented"})


PERSONALITIES: dict[str, type[Personality]] = {
    "llamacpp": Personality, "ollama": Ollama, "vllm": Vllm, "lmstudio": LmStudio,
}


def personality(name: str, options: dict[str, str] | None = None) -> Personality:
    """Return the personality ``NAME[@VERSION]`` (a bare name: the newest version).

    Raises ValueError naming the known personalities, versions or options.
    """
    base, _, version = name.partition("@")
    try:
        kind = PERSONALITIES[base]
    except KeyError:
        raise ValueError(
            f"unknown personality {base!r}; choose one of {', '.join(PERSONALITIES)}"
        ) from None
    return kind(version or None, options)


def all_versions() -> list[str]:
    """Every personality version the fake emulates, as ``--personality`` takes them."""
    return [f"{name}@{label}" if kind.VERSIONS else name
            for name, kind in PERSONALITIES.items() for label in (kind.VERSIONS or [""])]
