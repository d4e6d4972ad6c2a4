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


def _example_args(tool: ToolDefinition) -> dict[str, Any]:
    """Placeholder arguments for the example call: one per required parameter."""
    props = tool.parameters.get("properties", {}) if isinstance(tool.parameters, dict) else {}
    required = tool.parameters.get("required", list(props)[:1]) if isinstance(
        tool.parameters, dict) else []
    return {name: f"<{name}>" for name in required if isinstance(name, str)}


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
        "To call a tool, reply with the call written exactly like this example, "
        "with real argument values:\n"
        f"{example}\n"
        "After a tool's result arrives, answer the user with it."
    )


def with_tools_in_prompt(req: InferenceRequest, format_name: str) -> InferenceRequest:
    """Return ``req`` with its tools described in the system prompt (tools kept for parsing)."""
    text = describe_tools(req.tools, format_name)
    if req.system_prompt is not None:
        return dataclasses.replace(req, system_prompt=f"{req.system_prompt}\n\n{text}")
    messages = list(req.messages)
    if messages and messages[0].role == "system":
        first = messages[0]
        merged = f"{first.content}\n\n{text}" if first.content else text
        messages[0] = dataclasses.replace(first, content=merged)
        return dataclasses.replace(req, messages=messages)
    return dataclasses.replace(req, messages=[Message.system(text), *messages])
