"""Other APIs llama-server serves, as the chat request it turns each into.

llama-server answers the Anthropic Messages API (/v1/messages) and OpenAI's Responses API
(/v1/responses) by converting the request to a chat completion request; the fake does the
same, so validation, token counting and synthesis work on one shape.
"""

from __future__ import annotations

import json
from typing import Any


def _as_chat_message(message: Any) -> Any:
    """One message with its content blocks joined into text (a message without stays so)."""
    if not isinstance(message, dict) or "content" not in message:
        return message
    return dict(message, content=_block_text(message["content"]))


def _block_text(content: Any) -> Any:
    """Anthropic or Responses content (a string or typed blocks) as chat content."""
    if isinstance(content, list):
        return "".join(b["text"] for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return content


def _text_field(value: Any, key: str) -> str:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, str) else ""


def _anthropic_message(message: Any) -> list[Any]:
    """The chat messages one Anthropic message becomes (content blocks, tool use, results)."""
    role = _text_field(message, "role")
    if not isinstance(message, dict) or "content" not in message:
        return [] if role == "assistant" else [message]
    content = message["content"]
    if not isinstance(content, list):
        return [message]
    parts: list[Any] = []
    calls: list[Any] = []
    results: list[Any] = []
    reasoning = ""
    for block in content:
        kind = _text_field(block, "type")
        if kind == "text":
            parts.append(block)
        elif kind == "thinking":
            reasoning += _text_field(block, "thinking")
        elif kind == "image":
            source = block.get("source") if isinstance(block.get("source"), dict) else {}
            if _text_field(source, "type") == "base64":
                media = _text_field(source, "media_type") or "image/jpeg"
                url = f"data:{media};base64,{_text_field(source, 'data')}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif _text_field(source, "type") == "url":
                url = _text_field(source, "url")
                parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_use":
            arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
            calls.append({"id": _text_field(block, "id"), "type": "function",
                          "function": {"name": _text_field(block, "name"),
                                       "arguments": json.dumps(arguments)}})
        elif kind == "tool_result":
            result = block.get("content")
            text = result if isinstance(result, str) else _block_text(result) or ""
            results.append({"role": "tool", "tool_call_id": _text_field(block, "tool_use_id"),
                            "content": text})
    out: list[Any] = []
    if parts or calls or reasoning:
        converted: dict[str, Any] = {"role": role, "content": parts or ""}
        if calls:
            converted["tool_calls"] = calls
        if reasoning:
            converted["reasoning_content"] = reasoning
        out.append(converted)
    return out + results


def anthropic_as_chat(body: Any) -> dict[str, Any]:
    """An Anthropic Messages request as the chat request llama-server turns it into.

    Follows server_chat_convert_anthropic_to_oai (tools/server/server-chat.cpp).
    """
    if not isinstance(body, dict):
        return {"messages": []}
    messages: list[Any] = []
    system = body.get("system")
    if system is not None:
        text = system if isinstance(system, str) else "".join(
            _text_field(b, "text") for b in system if _text_field(b, "type") == "text"
        ) if isinstance(system, list) else ""
        messages.append({"role": "system", "content": text})
    given = body.get("messages")
    for message in given if isinstance(given, list) else []:
        messages.extend(_anthropic_message(message))
    chat: dict[str, Any] = {"messages": messages}
    tools = body.get("tools")
    if isinstance(tools, list):
        chat["tools"] = [{"type": "function", "function": {
            "name": _text_field(t, "name"), "description": _text_field(t, "description"),
            "parameters": t.get("input_schema", {}) if isinstance(t, dict) else {}}}
            for t in tools]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and _text_field(choice, "type") in ("auto", "any", "tool"):
        chat["tool_choice"] = "auto" if choice["type"] == "auto" else "required"
    if "stop_sequences" in body:
        chat["stop"] = body["stop_sequences"]
    chat["max_tokens"] = body["max_tokens"] if "max_tokens" in body else 4096
    for key in ("temperature", "top_p", "top_k", "stream", "chat_template_kwargs"):
        if key in body:
            chat[key] = body[key]
    return chat


class Untranslatable(ValueError):
    """A request llama-server cannot convert; the message is its own (a 400)."""


def _input_parts(parts: list[Any]) -> list[dict[str, Any]]:
    """An input message's content parts as chat content parts."""
    out = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "input_text":
            if "text" not in part:
                raise Untranslatable("'Input text' requires 'text'")
            out.append({"text": part["text"], "type": "text"})
        elif kind == "input_image":
            if "image_url" not in part:
                raise Untranslatable("'image_url' is required")
            out.append({"image_url": {"url": part["image_url"]}, "type": "image_url"})
        elif kind == "input_file":
            raise Untranslatable("'input_file' is not supported by llamacpp at this moment")
        else:
            raise Untranslatable("'type' must be one of 'input_text', 'input_image', or "
                                 "'input_file'")
    return out


def _output_parts(parts: list[Any]) -> list[dict[str, Any]]:
    """An earlier assistant message's content parts as chat content parts."""
    out = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("output_text", "input_text"):
            if not isinstance(part.get("text"), str):
                raise Untranslatable("'Output text' requires 'text'")
            out.append({"text": part["text"], "type": "text"})
        elif kind == "refusal":
            if not isinstance(part.get("refusal"), str):
                raise Untranslatable("'Refusal' requires 'refusal'")
            out.append({"refusal": part["refusal"], "type": "refusal"})
        else:
            raise Untranslatable("'type' must be one of 'output_text' or 'refusal'")
    return out


def _strings(item: dict[str, Any], *keys: str) -> bool:
    return all(isinstance(item.get(k), str) for k in keys)


def responses_as_chat(body: Any) -> dict[str, Any]:
    """A Responses API request as the chat request llama-server turns it into.

    Follows server_chat_convert_responses_to_chatcmpl (tools/server/server-chat.cpp) for
    text and image input, earlier assistant messages, function calls and their outputs;
    raises Untranslatable with llama-server's message where it refuses.
    """
    if not isinstance(body, dict) or "input" not in body:
        raise Untranslatable("'input' is required")
    previous = body.get("previous_response_id")
    if isinstance(previous, str) and previous:
        raise Untranslatable("llama.cpp does not support 'previous_response_id'.")
    chat: dict[str, Any] = {k: v for k, v in body.items()
                            if k not in ("input", "instructions", "tools", "max_output_tokens")}
    messages: list[Any] = []
    if "instructions" in body:
        instructions = body["instructions"]
        messages.append({"role": "system",
                         "content": instructions if isinstance(instructions, str) else ""})
    given = body["input"]
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        for item in given:
            messages.extend(_input_item(item, messages))
    else:
        raise Untranslatable("'input' must be a string or array of objects")
    chat["messages"] = messages
    if "tools" in body:
        if not isinstance(body["tools"], list):
            raise Untranslatable("'tools' must be an array of objects")
        tools = [{"type": "function", "function": {"strict": True, **{
            k: v for k, v in t.items() if k != "type"}}}
            for t in body["tools"] if isinstance(t, dict) and t.get("type") == "function"]
        if tools:
            chat["tools"] = tools
    if "max_output_tokens" in body:
        chat["max_tokens"] = body["max_output_tokens"]
    return chat


def _input_item(item: Any, messages: list[Any]) -> list[Any]:
    """The chat messages one input item adds (none when it merges into the previous one)."""
    if not isinstance(item, dict):
        raise Untranslatable("Cannot determine type of 'item'")
    item = dict(item)
    previous: dict[str, Any] = (messages[-1] if messages and isinstance(messages[-1], dict)
                                else {})
    if isinstance(item.get("content"), str):
        item["content"] = [{"text": item["content"], "type": "input_text"}]
    if isinstance(item.get("content"), list) and item.get("role") in (
            "user", "system", "developer"):
        parts = _input_parts(item["content"])
        return [{**{k: v for k, v in item.items() if k not in ("type", "status")},
                 "content": parts}]
    if item.get("role") == "assistant" and item.get("type") == "message":
        content = item.get("content")
        parts = _output_parts(content) if isinstance(content, list) else []
        if previous.get("role") == "assistant":
            earlier = previous.get("content")
            previous["content"] = [*(earlier if isinstance(earlier, list) else []), *parts]
            return []
        return [{**{k: v for k, v in item.items() if k not in ("type", "status")},
                 "content": parts}]
    if _strings(item, "arguments", "call_id", "name", "type") \
            and item["type"] == "function_call":
        call = {"type": "function", "function": {"arguments": item["arguments"],
                                                 "name": item["name"]}, "id": item["call_id"]}
        if previous.get("role") == "assistant":
            previous["tool_calls"] = [*list(previous.get("tool_calls") or []), call]
            return []
        return [{"role": "assistant", "tool_calls": [call]}]
    if _strings(item, "call_id", "output", "type") and item["type"] == "function_call_output":
        return [{"role": "tool", "content": item["output"], "tool_call_id": item["call_id"]}]
    raise Untranslatable("Cannot determine type of 'item'")
