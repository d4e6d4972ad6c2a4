"""Ollama's native API (`POST /api/chat`, `/api/generate`) on top of the recorded chat fixtures.

A native request is checked the way Ollama checks it (Go's JSON errors, `model is
required`, `model '<name>' not found`) and translated into the OpenAI chat body the
fixture store matches; the matched fixture's reply (SSE events or one JSON body) is
rendered back in Ollama's shape: NDJSON lines ending in a `done: true` line with
nanosecond timings, or one JSON object when `stream` is false (it defaults to true).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from fakellama import convert
from fakellama.fixtures import Fixture, SseEvent
from fakellama.personalities import Reply, json_reply
from fakellama.wire import JSON_CONTENT_TYPE, dumps

CHAT = "ollama_chat"
GENERATE = "ollama_generate"
ENDPOINTS = frozenset({CHAT, GENERATE})
NDJSON_CONTENT_TYPE = "application/x-ndjson"

# Ollama options with an OpenAI chat field of their own; the rest (num_ctx, num_gpu, ...)
# tune the runner, not the reply, and are not part of what a fixture matches.
OPTION_FIELDS = {
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "typical_p": "typical_p", "seed": "seed", "num_predict": "max_tokens", "stop": "stop",
    "repeat_penalty": "repeat_penalty", "repeat_last_n": "repeat_last_n",
    "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
}
# Go's names for the request fields a client most often gets wrong, as its JSON errors say them.
GoFields = dict[str, tuple[type, str]]
_CHAT_FIELDS: GoFields = {
    "model": (str, "string"), "messages": (list, "[]api.Message"), "stream": (bool, "bool"),
    "tools": (list, "api.Tools"), "options": (dict, "map[string]interface {}"),
}
_GENERATE_FIELDS: GoFields = {
    "model": (str, "string"), "prompt": (str, "string"), "system": (str, "string"),
    "suffix": (str, "string"), "stream": (bool, "bool"), "raw": (bool, "bool"),
    "options": (dict, "map[string]interface {}"),
}
_MESSAGE_FIELDS: GoFields = {
    "role": (str, "string"), "content": (str, "string"), "thinking": (str, "string"),
    "images": (list, "[]api.ImageData"), "tool_calls": (list, "[]api.ToolCall"),
    "tool_name": (str, "string"),
}
# The fake has no model to load: a fixed, plausible load time; a missing recorded time
# counts as one millisecond per token, so tokens per second stays finite.
LOAD_NS = 2_000_000
NS_PER_TOKEN = 1_000_000


class NativeError(ValueError):
    """A request Ollama refuses: the HTTP status and Ollama's message."""

    def __init__(self, status: int, message: str) -> None:
        """Record the status and the message."""
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class NativeRequest:
    """A checked native request: what it asked, as the chat body the fixtures match."""

    endpoint: str
    body: dict[str, Any]
    chat: dict[str, Any]
    stream: bool
    thinking: bool
    loading: str | None = None  # "load" or "unload" when no message or prompt was sent

    @property
    def model(self) -> str:
        """The model name as the client sent it (Ollama echoes it)."""
        return str(self.body["model"])


def parse_request(endpoint: str, raw: bytes, model_name: str) -> NativeRequest:
    """Check a native body and translate it; raises NativeError with Ollama's status and text."""
    struct = "ChatRequest" if endpoint == CHAT else "GenerateRequest"
    body = _decode(raw, f"api.{struct}")
    _check_types(endpoint, struct, body)
    model = body.get("model")
    if not model:
        raise NativeError(400, "model is required")
    if model not in (model_name, f"{model_name}:latest"):
        raise NativeError(404, f"model '{model}' not found")
    asked = body.get("messages") if endpoint == CHAT else body.get("prompt")
    loading = None if asked else ("unload" if body.get("keep_alive") in (0, "0", "0s") else "load")
    return NativeRequest(endpoint, body, _chat_body(endpoint, body),
                         stream=body.get("stream") is not False,
                         thinking=body.get("think") is not False, loading=loading)


def _check_types(endpoint: str, struct: str, body: dict[str, Any]) -> None:
    """Refuse what Go's JSON decoding of Ollama's request struct would refuse."""
    _check_fields(body, _CHAT_FIELDS if endpoint == CHAT else _GENERATE_FIELDS, struct)
    if endpoint == CHAT:
        for message in body.get("messages") or []:
            if not isinstance(message, dict):
                raise _type_error(message, f"{struct}.messages", "api.Message")
            _check_fields(message, _MESSAGE_FIELDS, f"{struct}.messages")
    think = body.get("think")
    if think is not None and not isinstance(think, (bool, str)):
        raise NativeError(400, 'think must be a boolean or string ("high", "medium", "low", '
                               "true, or false)")


def _chat_body(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat body a recorded request would carry for this native one."""
    if endpoint == CHAT:
        messages = [_chat_message(m) for m in body.get("messages") or []]
    else:  # Ollama renders a generate prompt through the chat template as one user turn
        system = body.get("system")
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": body.get("prompt") or ""})
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    if endpoint == CHAT and body.get("tools"):
        chat["tools"] = body["tools"]
    for option, value in (body.get("options") or {}).items():
        if option in OPTION_FIELDS and value is not None:
            chat[OPTION_FIELDS[option]] = value
    if body.get("format") == "json":
        chat["response_format"] = {"type": "json_object"}
    elif isinstance(body.get("format"), dict):
        chat["response_format"] = {"type": "json_schema", "json_schema": {"schema": body["format"]}}
    return chat


def _decode(raw: bytes, go_type: str) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise NativeError(400, "missing request body")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise NativeError(400, "unexpected EOF") from None
        expected = "object key string" if "property name" in exc.msg else "value"
        raise NativeError(400, f"invalid character {text[exc.pos]!r} looking for beginning "
                               f"of {expected}") from None
    if not isinstance(body, dict):
        raise NativeError(400, f"json: cannot unmarshal {_go_kind(body)} into Go value of "
                               f"type {go_type}")
    return body


def _go_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_error(value: Any, field: str, go_type: str) -> NativeError:
    return NativeError(400, f"json: cannot unmarshal {_go_kind(value)} into Go struct field "
                            f"{field} of type {go_type}")


def _check_fields(obj: dict[str, Any], fields: GoFields, struct: str) -> None:
    for name, (kind, go_type) in fields.items():
        value = obj.get(name)
        # JSON null leaves a Go field at its zero value; no kind here accepts a bool but bool.
        if value is not None and not isinstance(value, kind):
            raise _type_error(value, f"{struct}.{name}", go_type)


def _chat_message(message: dict[str, Any]) -> dict[str, Any]:
    """One native message as the OpenAI message a recorded request carried."""
    out: dict[str, Any] = {"role": str(message.get("role", "")).lower(),
                           "content": message.get("content") or ""}
    calls = message.get("tool_calls")
    if calls:
        if not out["content"]:
            out["content"] = None  # OpenAI clients send null beside tool calls
        out["tool_calls"] = [_openai_call(c) for c in calls if isinstance(c, dict)]
    return out


def _openai_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return {"type": "function", "function": {"name": function.get("name", ""),
                                             "arguments": text}}


# -- replies ------------------------------------------------------------------------------------


def error_reply(status: int, message: str, extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    """Return Ollama's native error: {"error": "<message>"}."""
    return json_reply(status, {"error": message}, extra)


def as_native_error(reply: Reply) -> Reply:
    """Rewrap any error reply (an OpenAI-style or llama-server envelope) in Ollama's native one."""
    value: Any
    try:
        value = json.loads(reply.body)
    except ValueError:
        value = reply.body.decode("utf-8", errors="replace")
    if isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], str):
        return reply
    kept = tuple((k, v) for k, v in reply.headers if k.lower() == "retry-after")
    return error_reply(reply.status, _error_text(value), kept)


def load_reply(request: NativeRequest) -> Reply:
    """Return the answer to a request with no messages (chat) or no prompt (generate)."""
    if request.endpoint == CHAT:
        value: dict[str, Any] = {"model": request.model, "created_at": created_at(),
                                 "message": {"role": "assistant", "content": ""},
                                 "done_reason": request.loading, "done": True}
    else:
        value = {"model": request.model, "created_at": created_at(), "response": "",
                 "done": True, "done_reason": request.loading}
    return json_reply(200, value)


def created_at() -> str:
    """Return now the way Go marshals a UTC time: RFC 3339, nanoseconds without trailing zeros."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    fraction = f"{nanos:09d}".rstrip("0")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


@dataclass(frozen=True)
class Line:
    """One NDJSON line: its recorded time and its text after the model and created_at fields."""

    t: float
    tail: str


@dataclass(frozen=True)
class NativeReply:
    """A fixture's reply in Ollama's native shape, less the per-request model and created_at."""

    status: int
    error: str | None  # a recorded error (even one mid-stream) is replayed as Ollama's error
    whole: str
    lines: tuple[Line, ...]

    def reply(self, model: str) -> Reply:
        """Return the non-streamed reply."""
        if self.error is not None:
            return error_reply(self.status, self.error)
        return Reply(200, (_prefix(model) + self.whole).encode(),
                     (("Content-Type", JSON_CONTENT_TYPE),))

    def events(self, model: str) -> tuple[SseEvent, ...]:
        """Return the streamed reply, one NDJSON line per event."""
        prefix = _prefix(model)
        return tuple(SseEvent(line.t, prefix + line.tail + "\n") for line in self.lines)


def _prefix(model: str) -> str:
    return '{"model":' + dumps(model) + ',"created_at":"' + created_at() + '",'


def render(fixture: Fixture, endpoint: str, thinking: bool) -> NativeReply:
    """Render a recorded chat fixture as /api/chat (or /api/generate) would answer it."""
    body: Any = fixture.response_body
    status = fixture.status
    if fixture.streamed and fixture.events is not None:
        status, body = convert.assemble(fixture.events)
    elif fixture.response_text is not None:
        try:
            body = json.loads(fixture.response_text)
        except ValueError:
            body = fixture.response_text
    if status != 200 or not isinstance(body, dict):
        return NativeReply(status if status >= 400 else 500, _error_text(body), "", ())
    events = fixture.events if fixture.events is not None else convert.split(body, False)
    message = ((body.get("choices") or [{}])[0]).get("message") or {}
    calls = [] if endpoint == GENERATE else [  # /api/generate has no tools
        _native_call(i, c) for i, c in enumerate(message.get("tool_calls") or [])]
    thought = message.get("reasoning_content") or message.get("reasoning") or ""
    final = _final(body)
    whole = _part(endpoint, message.get("content") or "", thought if thinking else "", calls,
                  final)
    return NativeReply(200, None, whole, _lines(endpoint, events, calls, thinking, final))


def _lines(endpoint: str, events: tuple[SseEvent, ...], calls: list[dict[str, Any]],
           thinking: bool, final: dict[str, Any]) -> tuple[Line, ...]:
    """Map each recorded chunk to NDJSON lines; whole tool calls come with the finish."""
    out: list[Line] = []
    t = 0.0
    for event, (_, value) in zip(events, convert.event_payloads(events), strict=True):
        t = event.t
        if not isinstance(value, dict):
            continue  # [DONE]
        for choice in value.get("choices") or []:
            delta = choice.get("delta") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if thought and thinking:
                out.append(Line(t, _part(endpoint, "", thought)))
            if delta.get("content"):
                out.append(Line(t, _part(endpoint, delta["content"])))
            if choice.get("finish_reason") and calls:
                out.append(Line(t, _part(endpoint, "", calls=calls)))
                calls = []
    if calls:
        out.append(Line(t, _part(endpoint, "", calls=calls)))
    out.append(Line(t, _part(endpoint, "", final=final)))
    return tuple(out)


def _part(endpoint: str, content: str, thinking: str = "",
          calls: list[dict[str, Any]] | None = None,
          final: dict[str, Any] | None = None) -> str:
    """One reply object (fields in Go's order) less its leading '{' and model, created_at."""
    if endpoint == CHAT:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = calls
        value: dict[str, Any] = {"message": message}
        if final is None:
            value["done"] = False
        else:
            value["done_reason"] = final["done_reason"]
            value["done"] = True
    else:
        value = {"response": content}
        if thinking:
            value["thinking"] = thinking
        value["done"] = final is not None
        if final is not None:
            value["done_reason"] = final["done_reason"]
    if final is not None:
        value.update((k, v) for k, v in final.items() if k != "done_reason")
    return dumps(value)[1:]


def _native_call(index: int, call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call as Ollama's: arguments a JSON object, the index inside function."""
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        arguments = {}
    out: dict[str, Any] = {}
    if call.get("id"):
        out["id"] = call["id"]
    out["function"] = {"index": index, "name": function.get("name", ""),
                       "arguments": arguments if isinstance(arguments, dict) else {}}
    return out


def _final(body: dict[str, Any]) -> dict[str, Any]:
    """done_reason and the timings of the last line, from the recorded usage and timings."""
    choice = (body.get("choices") or [{}])[0]
    usage = body.get("usage") or {}
    timings = body.get("timings") or {}
    prompt = int(usage.get("prompt_tokens", timings.get("prompt_n", 0) + timings.get("cache_n", 0)))
    completion = int(usage.get("completion_tokens", timings.get("predicted_n", 0)))
    prompt_ns = _nanoseconds(timings.get("prompt_ms"), prompt)
    eval_ns = _nanoseconds(timings.get("predicted_ms"), completion)
    return {"done_reason": "length" if choice.get("finish_reason") == "length" else "stop",
            "total_duration": LOAD_NS + prompt_ns + eval_ns, "load_duration": LOAD_NS,
            "prompt_eval_count": prompt, "prompt_eval_duration": prompt_ns,
            "eval_count": completion, "eval_duration": eval_ns}


def _nanoseconds(milliseconds: Any, tokens: int) -> int:
    if isinstance(milliseconds, (int, float)) and milliseconds > 0:
        return round(milliseconds * 1_000_000)
    return max(1, tokens) * NS_PER_TOKEN


def _error_text(value: Any) -> str:
    """The message of a recorded error body, whatever its envelope."""
    if isinstance(value, dict):
        inner = value.get("error", value)
        if isinstance(inner, dict):
            return str(inner.get("message", dumps(inner)))
        return str(inner)
    return str(value)
