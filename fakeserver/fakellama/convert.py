"""One recording serves both forms: assemble a body from SSE events, or events from a body."""

from __future__ import annotations

import json
import re
from typing import Any

from fakellama import api_streams
from fakellama.fixtures import SseEvent
from fakellama.wire import dumps, parse_sse_block, sse_event

DONE = "[DONE]"
_PIECE = re.compile(r"\s*\S+|\s+")


def pieces(text: str) -> list[str]:
    """Split text into word-sized pieces (leading whitespace kept) like a token stream."""
    return _PIECE.findall(text)


def _fragments(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def event_payloads(events: tuple[SseEvent, ...] | list[SseEvent]) -> list[tuple[str, Any]]:
    """Decode events into (field, JSON value or the [DONE] string) pairs.

    A named event (``event: message_start`` then its ``data:``, as the Anthropic and
    Responses streams send) gives its name in place of the field.
    """
    out: list[tuple[str, Any]] = []
    for event in events:
        named = api_streams.named_event(event.raw)
        field, payload = named if named is not None else parse_sse_block(event.raw)
        out.append((field, payload if payload == DONE else json.loads(payload)))
    return out


def usage_from_timings(timings: dict[str, Any]) -> dict[str, Any]:
    """Rebuild llama-server's usage block from its timings block."""
    cached = int(timings.get("cache_n", 0))
    prompt = int(timings.get("prompt_n", 0)) + cached
    predicted = int(timings.get("predicted_n", 0))
    return {"completion_tokens": predicted, "prompt_tokens": prompt,
            "total_tokens": prompt + predicted,
            "prompt_tokens_details": {"cached_tokens": cached}}


#: The fake's nominal generation time per token (it has no model to time).
TOKEN_SECONDS = 0.001


def nominal_timings(prompt_n: int, predicted_n: int, cache_n: int = 0) -> dict[str, Any]:
    """A timings block for token counts the fake did not time.

    Nominal speeds (0.05 ms a prompt token, a millisecond a generated one): llama-server
    sends timings with every final result, and the fake has no model to measure.
    """
    prompt_ms = prompt_n * 0.05
    predicted_ms = predicted_n * TOKEN_SECONDS * 1000
    return {"cache_n": cache_n, "prompt_n": prompt_n, "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / prompt_n if prompt_n else 0.0,
            "prompt_per_second": 1e3 * prompt_n / prompt_ms if prompt_ms else 0.0,
            "predicted_n": predicted_n, "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / predicted_n if predicted_n else 0.0,
            "predicted_per_second": 1e3 * predicted_n / predicted_ms if predicted_ms else 0.0}


def assemble_chat(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Assemble chat.completion.chunk objects into the chat.completion a non-stream call gets."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: Any = None
    usage: Any = None
    timings: Any = None
    head: dict[str, Any] = {}
    for chunk in chunks:
        head = head or chunk
        usage = chunk.get("usage", usage)
        timings = chunk.get("timings", timings)
        for choice in chunk.get("choices") or []:
            finish = choice.get("finish_reason") or finish
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                content.append(delta["content"])
            if isinstance(delta.get("reasoning_content"), str):
                reasoning.append(delta["reasoning_content"])
            for position, call in enumerate(delta.get("tool_calls") or []):
                slot = calls.setdefault(
                    call.get("index", position),
                    {"type": "function", "function": {"name": "", "arguments": ""}, "id": ""},
                )
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
                slot["id"] = call.get("id") or slot["id"]
                slot["type"] = call.get("type") or slot["type"]
    message: dict[str, Any] = {"role": "assistant"}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    message["content"] = "".join(content)
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    if usage is None and isinstance(timings, dict):
        usage = usage_from_timings(timings)
    body: dict[str, Any] = {
        "choices": [{"finish_reason": finish, "index": 0, "message": message}],
        "created": head.get("created"),
        "model": head.get("model"),
        "system_fingerprint": head.get("system_fingerprint"),
        "object": "chat.completion",
    }
    if usage is not None:
        body["usage"] = usage
    body["id"] = head.get("id")
    if timings is not None:
        body["timings"] = timings
    return body


def assemble(events: tuple[SseEvent, ...]) -> tuple[int, dict[str, Any]]:
    """Turn a recorded stream into (status, body) for a non-stream request."""
    decoded = [(f, v) for f, v in event_payloads(events) if v != DONE]
    errors = [v for f, v in decoded if f == "error" or (isinstance(v, dict) and "error" in v)]
    if errors:
        error = errors[0] if "error" in errors[0] else {"error": errors[0]}
        return int(error["error"].get("code", 500)), error
    names = [f for f, _ in decoded]
    named = [(f, v) for f, v in decoded if isinstance(v, dict)]
    if "message_start" in names:
        return 200, api_streams.assemble_anthropic(named)
    if "response.created" in names:
        return 200, api_streams.assemble_responses(named)
    objects = [v for _, v in decoded if isinstance(v, dict)]
    if not objects:
        return 200, {}
    kind = objects[0].get("object")
    if kind == "chat.completion.chunk":
        return 200, assemble_chat(objects)
    if kind == "text_completion":
        body = dict(objects[-1])
        text = "".join((o.get("choices") or [{}])[0].get("text", "") for o in objects
                       if o.get("choices"))
        choice = dict((body.get("choices") or [{}])[0])
        choice["text"] = text
        body["choices"] = [choice]
        return 200, body
    body = dict(objects[-1])
    body["content"] = "".join(str(o.get("content", "")) for o in objects)
    return 200, body


def _chunk(head: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"choices": choices}
    for key in ("created", "id", "model", "system_fingerprint"):
        out[key] = head.get(key)
    out["object"] = "chat.completion.chunk"
    return out


def _delta(head: dict[str, Any], delta: dict[str, Any]) -> str:
    return dumps(_chunk(head, [{"finish_reason": None, "index": 0, "delta": delta}]))


def split_chat(body: dict[str, Any], include_usage: bool) -> list[str]:
    """Turn a chat.completion into the data payloads llama-server would stream for it."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    out = [_delta(body, {"role": "assistant", "content": None})]
    for piece in pieces(message.get("reasoning_content") or ""):
        out.append(_delta(body, {"reasoning_content": piece}))
    for piece in pieces(message.get("content") or ""):
        out.append(_delta(body, {"content": piece}))
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        first = {
            "index": index,
            "id": call.get("id", ""),
            "type": "function",
            "function": {"name": function.get("name", ""), "arguments": ""},
        }
        out.append(_delta(body, {"tool_calls": [first]}))
        for fragment in _fragments(function.get("arguments") or ""):
            part = {"index": index, "function": {"arguments": fragment}}
            out.append(_delta(body, {"tool_calls": [part]}))
    final = _chunk(body, [{"finish_reason": choice.get("finish_reason"), "index": 0, "delta": {}}])
    tail = [final]
    if include_usage and "usage" in body:
        usage_chunk = _chunk(body, [])
        usage_chunk["usage"] = body["usage"]
        tail.append(usage_chunk)
    if "timings" in body:
        tail[-1]["timings"] = body["timings"]
    out.extend(dumps(c) for c in tail)
    out.append(DONE)
    return out


def split_completion(body: dict[str, Any]) -> list[str]:
    """Turn a native /completion body into its stream (content pieces, then the final object)."""
    out = []
    for piece in pieces(str(body.get("content", ""))):
        out.append(dumps({"index": 0, "content": piece, "tokens": [], "stop": False,
                          "id_slot": body.get("id_slot", -1),
                          "tokens_predicted": 0, "tokens_evaluated": 0}))
    final = dict(body)
    final["content"] = ""
    out.append(dumps(final))
    return out


def split_text_completion(body: dict[str, Any]) -> list[str]:
    """Turn an OpenAI text_completion body into streamed chunks ending in [DONE]."""
    choice = dict((body.get("choices") or [{}])[0])
    out = []
    for piece in pieces(str(choice.get("text", ""))):
        part = dict(body)
        part["choices"] = [{"text": piece, "index": 0, "logprobs": None, "finish_reason": None}]
        out.append(dumps(part))
    last = dict(body)
    last["choices"] = [{"text": "", "index": 0, "logprobs": None,
                        "finish_reason": choice.get("finish_reason")}]
    out.append(dumps(last))
    out.append(DONE)
    return out


def _response_timings(body: dict[str, Any]) -> dict[str, Any]:
    """Timings for a Responses stream split from a whole reply, which carries none."""
    usage: dict[str, Any] = body["usage"] if isinstance(body.get("usage"), dict) else {}
    details = usage.get("input_tokens_details")
    cached = int(details.get("cached_tokens", 0)) if isinstance(details, dict) else 0
    prompt = int(usage.get("input_tokens", 0))
    return nominal_timings(prompt - cached, int(usage.get("output_tokens", 0)), cached)


def split(body: Any, include_usage: bool) -> tuple[SseEvent, ...]:
    """Turn a non-stream 200 body into SSE events, picking the shape from the body."""
    if not isinstance(body, dict):
        return (SseEvent(0.0, sse_event(dumps(body))),)
    kind = body.get("object")
    if kind == "response" or body.get("type") == "message":
        # The Anthropic and Responses APIs stream named events, framed whole.
        events = (api_streams.responses_events(body, pieces, _response_timings(body))
                  if kind == "response" else api_streams.anthropic_events(body, pieces))
        return tuple(SseEvent(0.0, api_streams.frame(name, data)) for name, data in events)
    if kind == "chat.completion":
        payloads = split_chat(body, include_usage)
    elif kind == "text_completion":
        payloads = split_text_completion(body)
    else:
        payloads = split_completion(body)
    return tuple(SseEvent(0.0, sse_event(p)) for p in payloads)
