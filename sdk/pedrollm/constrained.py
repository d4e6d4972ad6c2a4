"""Tool calls constrained by the server's sampler, for models without native tool calls.

When a server returns no native tool calls (a chat template without tools,
llama-server without ``--jinja``), any model can still call tools reliably if its
reply is *constrained*: the SDK describes the tools in the system prompt and sends a
JSON schema derived from them, which the server turns into a grammar, so the reply is
one JSON object, the *envelope*::

    {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    {"answer": "Paris is sunny today."}

With ``tool_choice`` ``"auto"`` (or unset) both shapes are allowed, so a plain answer
still comes through; with ``"required"`` or a tool's name only a call (of that tool)
is. A call's ``name`` is one of the offered tools and its ``arguments`` follow that
tool's parameters schema, since the schema says so for each tool.

The other piece is :func:`hermes_call_grammar`: a GBNF grammar that makes a model
write one call in the Hermes ``<tool_call>`` text format, for prompt-only tools
with a call required, on servers that take GBNF.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .toolcalls.result import ParseResult
from .toolprompt import with_system_text
from .types import (
    InferenceRequest,
    InvalidToolCall,
    Message,
    StreamDelta,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
)

CALL_KEY = "tool_call"
ANSWER_KEY = "answer"


def _named(tool_choice: Any) -> str | None:
    """The tool a choice names, if it names one (a name, or the OpenAI object form)."""
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
        return tool_choice
    if isinstance(tool_choice, dict):
        fn = tool_choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return str(fn["name"])
    return None


def requires_call(tool_choice: Any) -> bool:
    """True when the caller asks for a tool call, not just allows one."""
    return tool_choice == "required" or _named(tool_choice) is not None


def _arguments_schema(tool: ToolDefinition) -> dict[str, Any]:
    """A tool's parameters as the schema of its ``arguments`` (always an object)."""
    schema = dict(tool.parameters) if isinstance(tool.parameters, dict) else {}
    schema["type"] = "object"
    return schema


def envelope_schema(tools: list[ToolDefinition], tool_choice: Any = None) -> dict[str, Any]:
    """The JSON schema of one constrained reply: a call of an offered tool, or an answer.

    Only a call when ``tool_choice`` requires one; only that tool's call when it names
    one. Each call alternative fixes the tool's name and its arguments' schema.
    """
    named = _named(tool_choice)
    offered = [t for t in tools if named is None or t.name == named]
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": _arguments_schema(t)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in offered
    ]
    call: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
    call_reply = {
        "type": "object",
        "properties": {CALL_KEY: call},
        "required": [CALL_KEY],
        "additionalProperties": False,
    }
    if requires_call(tool_choice):
        return call_reply
    answer_reply = {
        "type": "object",
        "properties": {ANSWER_KEY: {"type": "string"}},
        "required": [ANSWER_KEY],
        "additionalProperties": False,
    }
    return {"anyOf": [call_reply, answer_reply]}


def describe_envelope(tools: list[ToolDefinition], tool_choice: Any = None) -> str:
    """System-prompt text: the tools, and the one JSON object the reply must be."""
    listing = "\n".join(
        json.dumps({"name": t.name, "description": t.description, "parameters": t.parameters},
                   ensure_ascii=False)
        for t in tools
    )
    named = _named(tool_choice)
    call = json.dumps({CALL_KEY: {"name": named or tools[0].name, "arguments": {}}})
    lines = [
        "You can call these tools; each is described by a JSON schema:",
        listing,
        "",
        "Reply with one JSON object and nothing else.",
        f"To call a tool: {call} with the tool's name and a JSON object of its arguments.",
    ]
    if not requires_call(tool_choice):
        answer = json.dumps({ANSWER_KEY: "your reply"})
        lines.append(f"To answer without a tool, or once you have the tool's result: {answer}")
    return "\n".join(lines)


def _as_envelope(msg: Message) -> Message:
    """An earlier assistant turn with a tool call, written as the envelope it would be."""
    if msg.role != "assistant" or not msg.tool_calls:
        return msg
    call = msg.tool_calls[0]
    return Message.assistant(json.dumps(
        {CALL_KEY: {"name": call.name, "arguments": call.args}}, ensure_ascii=False))


def with_envelope_prompt(req: InferenceRequest) -> InferenceRequest:
    """Return ``req`` constrained: tools in the system prompt, the envelope as its schema.

    The tools stay on the request (for reading the reply) but are not sent natively.
    """
    return with_system_text(req, describe_envelope(req.tools, req.tool_choice),
                            [_as_envelope(m) for m in req.messages],
                            json_schema=envelope_schema(req.tools, req.tool_choice))


def read_envelope(text: str, tools: list[ToolDefinition],
                  call_id: str = "call_0") -> ParseResult | None:
    """Read a constrained reply; None when the text is not an envelope at all.

    A call of a tool that was not offered, or whose arguments are not an object, is
    kept as an invalid call (a server that ignored the schema can write anything).
    """
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        data = json.loads(stripped)
    except (ValueError, RecursionError):
        if f'"{CALL_KEY}"' in stripped[:40]:
            # A call cut short (max_tokens): it is kept, as the raw text, never lost.
            return ParseResult(invalid=[InvalidToolCall(
                raw=stripped[:10000], error="the constrained tool call is incomplete JSON",
                id=call_id)])
        partial = _cut_answer(stripped)
        return ParseResult(content=partial) if partial is not None else None
    if not isinstance(data, dict):
        return None
    if ANSWER_KEY in data and isinstance(data[ANSWER_KEY], str) and len(data) == 1:
        return ParseResult(content=data[ANSWER_KEY])
    call = data.get(CALL_KEY)
    if not isinstance(call, dict) or len(data) != 1:
        return None
    raw = json.dumps(call, ensure_ascii=False)
    name, args = call.get("name"), call.get("arguments", {})
    offered = {t.name for t in tools}
    if not isinstance(name, str) or name not in offered:
        return ParseResult(invalid=[InvalidToolCall(
            raw=raw, error=f"the call names no offered tool: {name!r}", id=call_id)])
    if not isinstance(args, dict):
        return ParseResult(invalid=[InvalidToolCall(
            raw=raw, error=f"arguments must be a JSON object, got {type(args).__name__}",
            name=name, id=call_id)])
    return ParseResult(calls=[ToolCall(id=call_id, name=name, args=args)])


_ANSWER_START = re.compile(r'\{\s*"answer"\s*:\s*"')


def _cut_answer(text: str) -> str | None:
    """The text of an answer envelope cut short (max_tokens), as far as it got."""
    found = _ANSWER_START.match(text)
    if found is None:
        return None
    body = text[found.end():]
    end = len(body)
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == '"':
            end = i
            break
        i += 1
    piece = body[:min(end, len(body))]
    for trim in range(0, 7):  # drop a half-written escape such as \u00 at the cut
        try:
            decoded = json.loads(f'"{piece[:len(piece) - trim]}"')
        except ValueError:
            continue
        return str(decoded)
    return None


class EnvelopeStreamParser:
    """The streaming side of :func:`read_envelope`: the reply is held until it is whole.

    A half-written JSON object means nothing to a caller, so the content or call
    deltas come at the end, together; ``finish`` equals ``read_envelope`` on the text
    (or the fallback parser's result when the text is not an envelope).
    """

    def __init__(self, tools: list[ToolDefinition], fallback: Any = None) -> None:
        self.tools = tools
        self.fallback = fallback
        self._parts: list[str] = []
        self._result: Any = None

    def feed(self, chunk: str) -> list[StreamDelta]:
        """Hold a chunk."""
        self._parts.append(chunk)
        return []

    def flush(self) -> list[StreamDelta]:
        """Read the whole reply; return its content or tool-call deltas."""
        result = self.finish()
        out: list[StreamDelta] = []
        if result.reasoning:
            out.append(StreamDelta(reasoning=result.reasoning))
        if result.content:
            out.append(StreamDelta(content=result.content))
        for i, call in enumerate(result.calls):
            out.append(StreamDelta(tool_call=ToolCallDelta(
                index=i, id=call.id, name=call.name,
                arguments=json.dumps(call.args, ensure_ascii=False))))
        return out

    def finish(self) -> Any:
        """The whole result."""
        if self._result is None:
            text = "".join(self._parts)
            result: Any = read_envelope(text, self.tools)
            if result is None:
                result = (self.fallback(text, self.tools) if self.fallback is not None
                          else ParseResult(content=text))
            self._result = result
        return self._result


# A JSON value in GBNF; strings without raw control characters, as JSON requires.
_JSON_GBNF = r'''
object ::= "{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}"
array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
value ::= object | array | string | number | "true" | "false" | "null"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" hex hex hex hex ) )* "\""
hex ::= [0-9a-fA-F]
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
integer ::= "-"? ( "0" | [1-9] [0-9]* )
boolean ::= "true" | "false"
ws ::= " "?
'''


def _gbnf_literal(text: str) -> str:
    """A GBNF string literal for text (tool names are letters, digits, _ . -)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_VALUE_RULES = {"string": "string", "integer": "integer", "number": "number",
                "boolean": "boolean", "array": "array", "object": "object", "null": '"null"'}


def _arguments_rule(tool: ToolDefinition) -> str:
    """GBNF for a tool's arguments: its required parameters first, typed; then any others."""
    params = tool.parameters if isinstance(tool.parameters, dict) else {}
    found = params.get("properties")
    props: dict[str, Any] = found if isinstance(found, dict) else {}
    required = [r for r in params.get("required", []) if isinstance(r, str)]
    pieces = []
    for name in required:
        spec = props.get(name)
        kind = spec.get("type") if isinstance(spec, dict) else None
        kind = kind if isinstance(kind, str) else None
        key = _gbnf_literal(json.dumps(name))
        pieces.append(f'{key} ws ":" ws {_VALUE_RULES.get(kind or "", "value")}')
    rest = '( ws "," ws string ws ":" ws value )*'
    if not pieces:
        return f'"{{" ws ( string ws ":" ws value {rest} )? ws "}}"'
    return '"{" ws ' + ' ws "," ws '.join(pieces) + f' {rest} ws "}}"'


def hermes_call_grammar(tools: list[ToolDefinition], tool_choice: Any = None) -> str:
    """A GBNF grammar for exactly one Hermes-format call of an offered (or the named) tool.

    ``<tool_call>\\n{"name": "NAME", "arguments": {...}}\\n</tool_call>``, the form the
    ``hermes`` text parser reads. The arguments hold the tool's required parameters,
    each of its declared JSON type, and may add others.
    """
    named = _named(tool_choice)
    offered = [t for t in tools if named is None or t.name == named]
    calls = []
    rules = []
    for i, tool in enumerate(offered):
        name = _gbnf_literal(json.dumps(tool.name)[1:-1])
        calls.append(f"call{i}")
        rules.append(f'call{i} ::= "\\"" {name} "\\", \\"arguments\\": " args{i}')
        rules.append(f"args{i} ::= {_arguments_rule(tool)}")
    return "\n".join([
        'root ::= "<tool_call>\\n{\\"name\\": " ( ' + " | ".join(calls) + ' ) "}\\n</tool_call>"',
        *rules,
    ]) + "\n" + _JSON_GBNF.lstrip("\n")


__all__ = [
    "ANSWER_KEY",
    "CALL_KEY",
    "EnvelopeStreamParser",
    "describe_envelope",
    "envelope_schema",
    "hermes_call_grammar",
    "read_envelope",
    "requires_call",
    "with_envelope_prompt",
]
