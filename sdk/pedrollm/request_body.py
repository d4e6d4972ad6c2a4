"""The OpenAI chat-completions request body: messages, tools and sampling fields.

Pure functions from an :class:`~pedrollm.types.InferenceRequest` to JSON-ready
dicts; each backend picks the sampling fields its server takes.
"""

from __future__ import annotations

import json
from typing import Any

from .types import InferenceRequest, Message


def message_to_openai(msg: Message) -> dict[str, Any]:
    """Return a message in the OpenAI chat format."""
    out: dict[str, Any] = {"role": msg.role}
    if msg.tool_calls:
        out["content"] = msg.content
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name,
                             "arguments": json.dumps(call.args, ensure_ascii=False)},
            }
            for call in msg.tool_calls
        ]
    elif msg.images:
        out["content"] = content_parts(msg)
    else:
        out["content"] = msg.content if msg.content is not None else ""
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    if msg.name is not None:
        out["name"] = msg.name
    return out


def content_parts(msg: Message) -> list[dict[str, Any]]:
    """A message's text and images as OpenAI content parts: the text first, then each image."""
    parts: list[dict[str, Any]] = []
    if msg.content:
        parts.append({"type": "text", "text": msg.content})
    parts.extend({"type": "image_url", "image_url": {"url": image.url}} for image in msg.images)
    return parts


def think_options(req: InferenceRequest) -> dict[str, Any]:
    """The thinking control as llama-server and vLLM take it (None: nothing is sent).

    On/off is the chat template's ``enable_thinking`` (Qwen3, DeepSeek and other
    templates read it); a level is ``reasoning_effort`` (gpt-oss reads it), with
    thinking turned on, since asking for an effort means asking for thinking.
    """
    if req.think is None:
        return {}
    if isinstance(req.think, bool):
        return {"chat_template_kwargs": {"enable_thinking": req.think}}
    return {"reasoning_effort": req.think, "chat_template_kwargs": {"enable_thinking": True}}


def standard_options(req: InferenceRequest) -> dict[str, Any]:
    """Return the sampling fields of the OpenAI chat API that ``req`` sets."""
    body: dict[str, Any] = {}
    for key in ("temperature", "max_tokens", "top_p", "seed"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    if req.stop:
        body["stop"] = list(req.stop)
    if req.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": req.json_schema, "strict": True},
        }
    return body


def llama_options(req: InferenceRequest) -> dict[str, Any]:
    """Return llama.cpp's own sampling fields (also accepted by several other servers)."""
    body: dict[str, Any] = {}
    for key in ("top_k", "min_p", "repeat_penalty", "n_probs", "grammar"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    return body


def chat_body(req: InferenceRequest, options: dict[str, Any], *, model: str | None,
              stream: bool, native_tools: bool) -> dict[str, Any]:
    """Build a chat-completions body: messages, model, tools (when native), options.

    ``req.extra`` is merged last, so a caller can set any field the server takes.
    """
    body: dict[str, Any] = {"messages": [message_to_openai(m) for m in req.all_messages()]}
    model = req.model or model
    if model:
        body["model"] = model
    if req.tools and native_tools:
        body["tools"] = [t.to_openai() for t in req.tools]
        if req.tool_choice is not None:
            choice = req.tool_choice
            if isinstance(choice, str) and choice not in ("auto", "none", "required"):
                choice = {"type": "function", "function": {"name": choice}}
            body["tool_choice"] = choice
    body.update(options)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    extra = dict(req.extra)
    ours, theirs = body.get("chat_template_kwargs"), extra.get("chat_template_kwargs")
    if isinstance(ours, dict) and isinstance(theirs, dict):
        # Template arguments from both think and extra reach the template; extra's win.
        extra["chat_template_kwargs"] = {**ours, **theirs}
    body.update(extra)
    return body
