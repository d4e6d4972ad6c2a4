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
    """What the fake says about its model: name, context size, build."""

    name: str = "scripted-tiny.gguf"
    ctx_size: int = 4096
    build_info: str = "b0-fakellama"
    metrics: bool = False
    # Started with --embeddings; the width of its vectors; its physical batch (--ubatch-size).
    embeddings: bool = False
    n_embd: int = 256
    ubatch_size: int = 512


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
    """llama-server: the default personality; others override what differs."""

    name = "llamacpp"
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

    def unauthorized(self) -> Reply:
        """Return the reply for a missing or wrong API key."""
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

    def overflow(self, n_prompt: int, n_ctx: int) -> Refusal | None:
        """Return the refusal of a prompt longer than the context (None: it is truncated)."""
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


class _NotLlamaServer(Personality):
    """What every other server shares: no llama-server checks, CORS or connection closing."""

    closes_on_error = False

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


class Ollama(_NotLlamaServer):
    """Ollama: root banner, /api/* routes (native chat included), OpenAI API under /v1."""

    name = "ollama"
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
    public_paths = frozenset(p for _, p in routes)

    def error(self, status: int, message: str, error_type: str, **extra: Any) -> Reply:
        """Return Ollama's OpenAI-layer error reply."""
        return json_reply(status, {"error": {"message": message, "type": error_type,
                                             "param": None, "code": None}})

    def not_found(self, method: str, path: str) -> Reply:
        """Return Go's plain-text 404."""
        return text_reply(404, "404 page not found")

    def builtin(self, endpoint: str) -> Builtin | None:
        """Return Ollama's model-free answers."""
        return {
            "root": lambda info, body: text_reply(200, "Ollama is running"),
            "version": lambda info, body: json_reply(200, {"version": "0.12.0"}),
            "tags": _ollama_tags,
            "ps": _ollama_ps,
            "show": _ollama_show,
            "models": lambda info, body: json_reply(200, {"object": "list", "data": [
                {"id": info.name, "object": "model", "created": _now(), "owned_by": "library"}]}),
        }.get(endpoint)

    def overflow(self, n_prompt: int, n_ctx: int) -> Refusal | None:
        """None: Ollama keeps the end of an over-long prompt and answers, it refuses nothing."""
        return None

    def validate(self, endpoint: str, body: Any) -> Refusal | None:
        """Also refuse thinking: the fake's model lacks the ``thinking`` capability."""
        refusal = super().validate(endpoint, body)
        if refusal is None and endpoint == "chat":
            refusal = _ollama_thinking_refusal(body)
        return refusal

    def adapt_body(self, body: Any) -> Any:
        """Rename reasoning_content to reasoning, drop timings and tool-call indexes."""
        body = _strip_llama_extras(body)
        if isinstance(body, dict) and "system_fingerprint" in body:
            body = dict(body, system_fingerprint="fp_ollama")
        return _ollama_message_quirks(body)

    def adapt_stream(self, payloads: list[str]) -> list[str]:
        """Send tool calls whole (no index) and reasoning as `reasoning`."""
        import json

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
                    slot = pending.setdefault(call.get("index", position),
                                              {"id": "", "type": "function",
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
                    part["tool_calls"] = [{k: v for k, v in c.items() if k != "index"}
                                          for c in part["tool_calls"]]
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
    # The one model, loaded: what `ollama ps` lists (size_vram 0: it runs on no GPU).
    tags = json.loads(_ollama_tags(info, body).body)["models"][0]
    return json_reply(200, {"models": [{
        "name": tags["name"], "model": tags["model"], "size": tags["size"],
        "digest": tags["digest"], "details": tags["details"],
        "expires_at": "2099-01-01T00:00:00Z", "size_vram": 0,
        "context_length": info.ctx_size}]})


def _ollama_show(info: ModelInfo, body: Any) -> Reply:
    return json_reply(200, {
        "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
        "details": {"parent_model": "", "format": "gguf", "family": "llama",
                    "families": ["llama"], "parameter_size": "65K", "quantization_level": "F32"},
        "model_info": {"general.architecture": "llama",
                       "llama.context_length": info.ctx_size},
        "capabilities": ["completion", "tools"],
    })


class Vllm(_NotLlamaServer):
    """vLLM: empty /health, /version, max_model_len in /v1/models, FastAPI error shapes."""

    name = "vllm"
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

    def error(self, status: int, message: str, error_type: str, **extra: Any) -> Reply:
        """Return vLLM's error reply."""
        kind = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError",
                503: "ServiceUnavailableError"}.get(status, "InternalServerError")
        return json_reply(status, {"object": "error", "message": message, "type": kind,
                                   "param": None, "code": status})

    def not_found(self, method: str, path: str) -> Reply:
        """Return FastAPI's 404."""
        return json_reply(404, {"detail": "Not Found"})

    def unauthorized(self) -> Reply:
        """Return vLLM's 401."""
        return json_reply(401, {"error": "Unauthorized"})

    def builtin(self, endpoint: str) -> Builtin | None:
        """Return vLLM's model-free answers."""
        return {
            "health": lambda info, body: Reply(200, b"", ()),
            "version": lambda info, body: json_reply(200, {"version": "0.10.0"}),
            "models": lambda info, body: json_reply(200, {"object": "list", "data": [{
                "id": info.name, "object": "model", "created": _now(), "owned_by": "vllm",
                "root": info.name, "parent": None, "max_model_len": info.ctx_size,
                "permission": []}]}),
            "metrics": lambda info, body: text_reply(200, "vllm:num_requests_running 0.0\n"),
            "tokenize": _vllm_tokenize,
            "detokenize": lambda info, body: json_reply(200, {
                "prompt": detokenize([int(t) for t in body.get("tokens") or []])}),
        }.get(endpoint)

    def adapt_body(self, body: Any) -> Any:
        """Drop llama-server's timings."""
        return _strip_llama_extras(body)

    def adapt_stream(self, payloads: list[str]) -> list[str]:
        """Drop llama-server's timings from chunks."""
        import json

        return [p if p == "[DONE]" else dumps(self.adapt_body(json.loads(p))) for p in payloads]


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
    """LM Studio: /api/v0/models with max_context_length and state, OpenAI API under /v1."""

    name = "lmstudio"
    routes = {
        ("GET", "/v1/models"): "models",
        ("GET", "/api/v0/models"): "models_v0",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/api/v0/chat/completions"): "chat",
        ("POST", "/v1/completions"): "oai_completion",
        ("POST", "/v1/embeddings"): "embeddings",
        ("POST", "/api/v0/embeddings"): "embeddings",
    }
    public_paths = frozenset(p for _, p in routes)

    def error(self, status: int, message: str, error_type: str, **extra: Any) -> Reply:
        """Return LM Studio's error reply."""
        return json_reply(status, {"error": message})

    def not_found(self, method: str, path: str) -> Reply:
        """Return LM Studio's unexpected-endpoint reply."""
        return json_reply(404, {"error": f"Unexpected endpoint or method. ({method} {path})"})

    def builtin(self, endpoint: str) -> Builtin | None:
        """Return LM Studio's model-free answers."""
        return {
            "models": lambda info, body: json_reply(200, {"data": [{
                "id": info.name, "object": "model", "owned_by": "organization_owner"}],
                "object": "list"}),
            "models_v0": lambda info, body: json_reply(200, {"object": "list", "data": [{
                "id": info.name, "object": "model", "type": "llm", "publisher": "fakellama",
                "arch": "llama", "compatibility_type": "gguf", "quantization": "F32",
                "state": "loaded", "max_context_length": info.ctx_size}]}),
        }.get(endpoint)

    def adapt_body(self, body: Any) -> Any:
        """Drop llama-server's timings."""
        return _strip_llama_extras(body)

    def adapt_stream(self, payloads: list[str]) -> list[str]:
        """Drop llama-server's timings from chunks."""
        import json

        return [p if p == "[DONE]" else dumps(self.adapt_body(json.loads(p))) for p in payloads]


PERSONALITIES: dict[str, type[Personality]] = {
    "llamacpp": Personality, "ollama": Ollama, "vllm": Vllm, "lmstudio": LmStudio,
}


def personality(name: str) -> Personality:
    """Return the personality called name; raises ValueError naming the known ones."""
    try:
        return PERSONALITIES[name]()
    except KeyError:
        raise ValueError(
            f"unknown personality {name!r}; choose one of {', '.join(PERSONALITIES)}"
        ) from None
