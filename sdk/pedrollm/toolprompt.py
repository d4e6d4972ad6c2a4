"""Describing tools in the system prompt, for servers that don't take them natively.

When a server has no native tool calling (llama-server without ``--jinja``, a
model whose template has no tools), the tools go into the system prompt, with an
example call written in the model's own format, and the calls come back in the
text, where :mod:`pedrollm.toolcalls` finds them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .types import InferenceRequest, Message, ToolCall, ToolDefinition

_PLACEHOLDERS: dict[str, Any] = {"string": "text", "integer": 1, "number": 1.5,
                                 "boolean": True, "array": [], "object": {}}


def _example_args(tool: ToolDefinition) -> dict[str, Any]:
    """Placeholder arguments of the right JSON type for a tool's required parameters."""
    props = tool.parameters.get("properties", {})
    out: dict[str, Any] = {}
    for name in tool.parameters.get("required", []):
        spec = props.get(name, {}) if isinstance(props.get(name), dict) else {}
        kind = spec.get("type")
        choices = spec.get("enum")
        out[name] = choices[0] if isinstance(choices, list) and choices else \
            _PLACEHOLDERS.get(kind if isinstance(kind, str) else "string", "text")
    return out


def describe_tools(tools: list[ToolDefinition], format_name: str) -> str:
    """Return system-prompt text listing the tools and showing how to call one."""
    from .toolcalls import get_format

    listing = "\n".join(
        json.dumps({"name": t.name, "description": t.description, "parameters": t.parameters},
                   ensure_ascii=False)
        for t in tools
    )
    example = get_format(format_name).render(
        [ToolCall(id="call_0", name=tools[0].name, args=_example_args(tools[0]))], ""
    )
    return (
        "You can call these tools; each is described by a JSON schema:\n"
        f"{listing}\n\n"
        "To call a tool, reply with the call written exactly like this example, with the "
        "tool's name and a JSON object of its arguments:\n"
        f"{example}\n"
        "The results come back in the next message. When you have the answer, reply "
        "with plain text and no tool call."
    )


def _calls_as_text(msg: Message, format_name: str) -> Message:
    """An assistant message whose tool calls are written into its text, in the format."""
    from .toolcalls import get_format

    if msg.role != "assistant" or not msg.tool_calls:
        return msg
    text = get_format(format_name).render(list(msg.tool_calls), msg.content or "")
    return Message.assistant(text)


def with_tools_in_prompt(req: InferenceRequest, format_name: str) -> InferenceRequest:
    """Return ``req`` with its tools described in the system prompt (tools kept for parsing).

    Earlier tool calls are written into their assistant messages' text, since a server
    without native tools may not take a ``tool_calls`` field; tool results keep role
    ``tool``.
    """
    return with_system_text(req, describe_tools(req.tools, format_name),
                            [_calls_as_text(m, format_name) for m in req.messages])


def with_system_text(req: InferenceRequest, text: str, messages: list[Message],
                     **changes: Any) -> InferenceRequest:
    """Return ``req`` with ``messages`` and ``text`` added to its system prompt.

    The text goes after ``system_prompt`` when there is one, else after a leading
    system message, else into a new system message first; ``changes`` are other fields.
    """
    messages = list(messages)
    if req.system_prompt is not None:
        return dataclasses.replace(req, system_prompt=f"{req.system_prompt}\n\n{text}",
                                   messages=messages, **changes)
    if messages and messages[0].role == "system":
        first = messages[0]
        merged = f"{first.content}\n\n{text}" if first.content else text
        messages[0] = dataclasses.replace(first, content=merged)
        return dataclasses.replace(req, messages=messages, **changes)
    return dataclasses.replace(req, messages=[Message.system(text), *messages], **changes)
