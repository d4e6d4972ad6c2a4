"""Turn a server's chat-completion reply into an :class:`InferenceResponse`.

Both paths end here: ``infer`` hands over the JSON body, ``stream`` hands over what
it accumulated from the deltas, so a streamed reply and a non-streamed one come out
the same. Native tool calls are decoded (arguments as a JSON string or an object);
a call that cannot be decoded is kept in ``invalid_tool_calls`` with its raw text,
never dropped. When tools were offered but none came back natively, the text is
given to the tool-call text parser of the model's format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import InvalidResponse
from .types import (
    InferenceResponse,
    InvalidToolCall,
    StreamDelta,
    Timings,
    ToolCall,
    ToolDefinition,
    Usage,
)


class TextParseResult(Protocol):
    """What a text tool-call parser returns (see :mod:`pedrollm.toolcalls`)."""

    content: str
    calls: list[ToolCall]
    invalid: list[InvalidToolCall]
    reasoning: str | None


TextToolParser = Callable[[str, list[ToolDefinition]], TextParseResult]


class StreamTextParser(Protocol):
    """An incremental text tool-call parser (see :class:`pedrollm.toolcalls.StreamingParser`)."""

    def feed(self, chunk: str) -> list[StreamDelta]:
        """Add text; return the deltas it settles."""

    def flush(self) -> list[StreamDelta]:
        """End the text; return the deltas the end settles."""

    def finish(self) -> TextParseResult:
        """Return the whole result, equal to parsing all the text at once."""


@dataclass
class RawToolCall:
    """A native tool call as the server sent it, before its arguments are decoded."""

    id: str | None = None
    name: str | None = None
    arguments: Any = ""


@dataclass
class RawReply:
    """The parts of one reply, before normalisation."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[RawToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    timings: Mapping[str, Any] | None = None
    model: str | None = None


def decode_tool_call(raw: RawToolCall, position: int) -> ToolCall | InvalidToolCall:
    """Decode one native call's arguments; a call that cannot be decoded is kept as invalid."""
    call_id = raw.id or f"call_{position}"
    args = raw.arguments
    raw_text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    if not raw.name:
        return InvalidToolCall(raw=raw_text, error="the tool call has no function name",
                               id=call_id)
    if isinstance(args, str):
        if not args.strip():
            args = {}
        else:
            try:
                args = json.loads(args)
            except RecursionError:
                return InvalidToolCall(
                    raw=raw_text[:1000], error="arguments are nested too deeply to decode",
                    name=raw.name, id=call_id,
                )
            except ValueError as exc:
                return InvalidToolCall(
                    raw=raw_text, error=f"arguments are not valid JSON: {exc}",
                    name=raw.name, id=call_id,
                )
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return InvalidToolCall(
            raw=raw_text,
            error=f"arguments must be a JSON object, got {type(args).__name__}",
            name=raw.name, id=call_id,
        )
    return ToolCall(id=call_id, name=raw.name, args=args)


_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def split_think(text: str) -> tuple[str, str | None]:
    """Move a leading ``<think>…</think>`` block (or a bare ``…</think>``) out of the text."""
    stripped = text.lstrip()
    if stripped.startswith(_THINK_OPEN):
        body = stripped[len(_THINK_OPEN):]
        end = body.find(_THINK_CLOSE)
        if end < 0:
            return "", body.strip()
        return body[end + len(_THINK_CLOSE):].lstrip(), body[:end].strip()
    end = text.find(_THINK_CLOSE)
    if end >= 0 and _THINK_OPEN not in text[:end]:
        # A template that opens the think block in the prompt leaves only its end.
        return text[end + len(_THINK_CLOSE):].lstrip(), text[:end].strip()
    return text, None


def _int(value: Any) -> int:
    """Return value if it is a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from(data: Mapping[str, Any] | None) -> Usage | None:
    """Read an OpenAI ``usage`` object, tolerating missing fields."""
    if not isinstance(data, Mapping):
        return None
    prompt, completion = _int(data.get("prompt_tokens")), _int(data.get("completion_tokens"))
    total = _int(data.get("total_tokens")) or prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


_TIMING_KEYS = frozenset(Timings.__dataclass_fields__)


def timings_from(data: Mapping[str, Any] | None) -> Timings | None:
    """Read llama-server's ``timings`` object, keeping only the fields it documents."""
    if not isinstance(data, Mapping):
        return None
    kept: dict[str, Any] = {
        k: v for k, v in data.items()
        if k in _TIMING_KEYS and isinstance(v, int | float) and not isinstance(v, bool)
    }
    # Plain construction: the keys and value types are already checked, and
    # dataclasses-json's from_dict cost a third of a local request's CPU time.
    return Timings(**kept)


def build_response(
    raw: RawReply,
    tools: Sequence[ToolDefinition] = (),
    text_parser: TextToolParser | None = None,
    parsed: TextParseResult | None = None,
) -> InferenceResponse:
    """Normalise one reply: decode native calls, fall back to the text parser, split reasoning.

    ``parsed`` is the text parser's result when a stream already computed it.
    """
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for i, rc in enumerate(raw.tool_calls):
        decoded = decode_tool_call(rc, i)
        (calls if isinstance(decoded, ToolCall) else invalid).append(decoded)  # type: ignore[arg-type]
    text = raw.content
    reasoning = raw.reasoning or None
    if not raw.tool_calls and tools and (parsed is not None or text_parser is not None):
        if parsed is None:
            assert text_parser is not None
            parsed = text_parser(text, list(tools))
        text, calls, invalid = parsed.content, list(parsed.calls), list(parsed.invalid)
        if parsed.reasoning:
            reasoning = f"{reasoning}\n{parsed.reasoning}" if reasoning else parsed.reasoning
    elif reasoning is None:
        text, reasoning = split_think(text)
    finish = raw.finish_reason
    if calls and finish in (None, "stop"):
        # Calls found in the text still mean the model wants them run.
        finish = "tool_calls"
    return InferenceResponse(
        text=text,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        reasoning=reasoning,
        finish_reason=finish,
        usage=usage_from(raw.usage),
        timings=timings_from(raw.timings),
        model=raw.model if isinstance(raw.model, str) else None,
    )


def _raw_tool_calls(items: Any) -> list[RawToolCall]:
    """Read a message's ``tool_calls`` list into RawToolCalls."""
    out: list[RawToolCall] = []
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, Mapping):
            out.append(RawToolCall(arguments=json.dumps(item)))
            continue
        fn = item.get("function")
        fn = fn if isinstance(fn, Mapping) else {}
        call_id = item.get("id")
        name = fn.get("name")
        out.append(RawToolCall(
            id=call_id if isinstance(call_id, str) and call_id else None,
            name=name if isinstance(name, str) else None,
            arguments=fn.get("arguments", ""),
        ))
    return out


def raw_reply_from_completion(body: Any) -> RawReply:
    """Read a non-streamed chat completion body; InvalidResponse if it has no choice."""
    if not isinstance(body, Mapping):
        raise InvalidResponse(f"expected a JSON object, got {type(body).__name__}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise InvalidResponse("the reply has no choices")
    choice = choices[0]
    msg = choice.get("message")
    if not isinstance(msg, Mapping):
        raise InvalidResponse("the reply's first choice has no message")
    content = msg.get("content")
    reasoning = msg.get("reasoning_content")
    if reasoning is None:
        reasoning = msg.get("reasoning")  # Ollama's and vLLM's newer name
    return RawReply(
        content=content if isinstance(content, str) else "",
        reasoning=reasoning if isinstance(reasoning, str) else "",
        tool_calls=_raw_tool_calls(msg.get("tool_calls")),
        finish_reason=choice.get("finish_reason") if isinstance(
            choice.get("finish_reason"), str) else None,
        usage=body.get("usage") if isinstance(body.get("usage"), Mapping) else None,
        timings=body.get("timings") if isinstance(body.get("timings"), Mapping) else None,
        model=body.get("model") if isinstance(body.get("model"), str) else None,
    )
