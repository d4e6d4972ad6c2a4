"""The Anthropic Messages and OpenAI Responses event streams, as llama-server sends them.

llama-server streams both APIs as named server-sent events, ``event: <name>`` then
``data: <json>`` (``format_anthropic_sse`` / ``format_oai_resp_sse`` in server-common.cpp),
and ends them without ``data: [DONE]``. A stream is one reply told in pieces, so the fake
builds it from the finished reply (a recorded body, or one it synthesized) in the order and
with the keys ``server-task.cpp`` writes: the opening events of the first token, one delta
event per piece of text or arguments, then the closing events of the final result. The
reverse, assembling a recorded stream into the body a non-stream request gets, lives here too.

Anthropic (``to_json_anthropic`` and ``to_json_anthropic_stream``): ``message_start``;
per content block (thinking, then text, then each tool call) ``content_block_start`` and its
``content_block_delta`` events (``thinking_delta``, ``text_delta``, ``input_json_delta``); then
``content_block_stop`` for each block in order (a thinking block gets an empty
``signature_delta`` first); ``message_delta`` with the stop reason and output tokens;
``message_stop``.

Responses (``to_json_oaicompat_resp`` and ``to_json_oaicompat_resp_stream``):
``response.created`` and ``response.in_progress``; per output item (reasoning, message,
function calls) ``response.output_item.added`` and its deltas (``reasoning_text``,
``content_part.added`` then ``output_text``, ``function_call_arguments``); then the ``done``
events of each item; ``response.completed`` with the whole response, its usage and
``timings``. llama-server reports every response as ``completed``, a cut one included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from fakellama.wire import dumps

Event = tuple[str, dict[str, Any]]
Splitter = Callable[[str], list[str]]
_EVENT_PREFIX = "event: "
_DATA_PREFIX = "data: "


def frame(name: str, data: dict[str, Any]) -> str:
    """One named server-sent event, framed as llama-server writes it."""
    return f"{_EVENT_PREFIX}{name}\n{_DATA_PREFIX}{dumps(data)}\n\n"


def named_event(raw: str) -> tuple[str, str] | None:
    """(name, data) of one framed ``event:`` / ``data:`` block; None for any other block."""
    if not raw.startswith(_EVENT_PREFIX):
        return None
    head, _, rest = raw.partition("\n")
    if not rest.startswith(_DATA_PREFIX):
        return None
    return head[len(_EVENT_PREFIX):], rest[len(_DATA_PREFIX):].rstrip("\n")


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in message.get("content") or [] if isinstance(b, dict)
            and b.get("type") == kind]


def _tool_arguments(block: dict[str, Any]) -> str:
    """A tool_use block's arguments as the text the model streamed."""
    arguments = block.get("arguments")
    if isinstance(arguments, str):
        return arguments
    # A recorded non-stream body keeps only the parsed input; Python's separators are the
    # ones the models' own JSON uses (and what llama-server got from the scripted model).
    return json.dumps(block.get("input", {}), ensure_ascii=False)


def anthropic_events(message: dict[str, Any], split: Splitter) -> list[Event]:
    """The Anthropic stream of one finished message (a /v1/messages body).

    A tool_use block may carry ``arguments`` (the text the model wrote) instead of
    relying on its ``input``; it is not sent.
    """
    usage = message.get("usage") or {}
    events: list[Event] = [("message_start", {"type": "message_start", "message": {
        "id": message.get("id"), "type": "message", "role": "assistant", "content": [],
        "model": message.get("model"), "stop_reason": None, "stop_sequence": None,
        "usage": {"cache_read_input_tokens": usage.get("cache_read_input_tokens", 0),
                  "input_tokens": usage.get("input_tokens", 0), "output_tokens": 0}}})]

    def delta(index: int, part: dict[str, Any]) -> Event:
        return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": part})

    def start(index: int, block: dict[str, Any]) -> Event:
        return ("content_block_start", {"type": "content_block_start", "index": index,
                                        "content_block": block})

    thinking = "".join(str(b.get("thinking", "")) for b in _blocks(message, "thinking"))
    text = "".join(str(b.get("text", "")) for b in _blocks(message, "text"))
    tools = _blocks(message, "tool_use")
    if thinking:
        events.append(start(0, {"type": "thinking", "thinking": ""}))
        events += [delta(0, {"type": "thinking_delta", "thinking": p}) for p in split(thinking)]
    if text:
        index = int(bool(thinking))
        events.append(start(index, {"type": "text", "text": ""}))
        events += [delta(index, {"type": "text_delta", "text": p}) for p in split(text)]
    first_tool = int(bool(thinking)) + int(bool(text))
    for position, block in enumerate(tools):
        index = first_tool + position
        events.append(start(index, {"type": "tool_use", "id": block.get("id"),
                                    "name": block.get("name")}))
        events += [delta(index, {"type": "input_json_delta", "partial_json": p})
                   for p in split(_tool_arguments(block)) if p]
    if thinking:
        # Anthropic's API closes a thinking block with its signature; a local model has none.
        events.append(delta(0, {"type": "signature_delta", "signature": ""}))
    for index in range(first_tool + len(tools)):
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence")},
        "usage": {"output_tokens": usage.get("output_tokens", 0)}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _event_data(events: Iterable[Event], name: str) -> list[dict[str, Any]]:
    return [data for event, data in events if event == name]


def assemble_anthropic(events: list[Event]) -> dict[str, Any]:
    """The /v1/messages body a non-stream request gets, from a recorded stream."""
    starts = _event_data(events, "message_start")
    head = starts[0].get("message", {}) if starts else {}
    blocks: dict[int, dict[str, Any]] = {}
    pieces: dict[int, list[str]] = {}
    for name, data in events:
        index = data.get("index")
        block = data.get("content_block")
        if name == "content_block_start" and isinstance(index, int) and isinstance(block, dict):
            blocks[index] = dict(block)
            pieces[index] = []
        elif name == "content_block_delta" and index in pieces \
                and isinstance(data.get("delta"), dict):
            part = data["delta"]
            for key in ("text", "thinking", "partial_json"):
                if isinstance(part.get(key), str):
                    pieces[index].append(part[key])
    content: list[dict[str, Any]] = []
    for index in sorted(blocks):
        block, joined = blocks[index], "".join(pieces[index])
        if block.get("type") == "thinking":
            content.append({"type": "thinking", "thinking": joined, "signature": ""})
        elif block.get("type") == "text":
            content.append({"type": "text", "text": joined})
        elif block.get("type") == "tool_use":
            try:
                arguments = json.loads(joined)
            except ValueError:
                arguments = {}  # as llama-server: arguments that do not parse become {}
            content.append({"type": "tool_use", "id": block.get("id"), "name": block.get("name"),
                            "input": arguments})
    deltas = _event_data(events, "message_delta")
    final = deltas[-1] if deltas else {}
    stop = final.get("delta") or {}
    usage = dict(head.get("usage") or {})
    usage["output_tokens"] = (final.get("usage") or {}).get("output_tokens", 0)
    return {"id": head.get("id"), "type": "message", "role": "assistant", "content": content,
            "model": head.get("model"), "stop_reason": stop.get("stop_reason"),
            "stop_sequence": stop.get("stop_sequence"), "usage": usage}


def _item_text(item: dict[str, Any], kind: str) -> str:
    return "".join(str(p.get("text", "")) for p in item.get("content") or []
                   if isinstance(p, dict) and p.get("type") == kind)


def responses_events(response: dict[str, Any], split: Splitter,
                     timings: dict[str, Any] | None = None) -> list[Event]:
    """The Responses stream of one finished response (a /v1/responses body)."""
    head: dict[str, Any] = {"id": response.get("id"), "object": "response",
                            "status": "in_progress"}
    events: list[Event] = [("response.created", {"type": "response.created", "response": head}),
                           ("response.in_progress", {"type": "response.in_progress",
                                                     "response": dict(head)})]
    closing: list[Event] = []
    output: list[dict[str, Any]] = []
    for item in response.get("output") or []:
        if not isinstance(item, dict):
            continue  # a hand-written fixture's odd item: nothing a stream could carry
        kind, item_id = item.get("type"), item.get("id")
        if kind == "reasoning":
            text = _item_text(item, "reasoning_text")
            events.append(("response.output_item.added", {
                "type": "response.output_item.added", "item": {
                    "id": item_id, "summary": [], "type": "reasoning", "content": [],
                    "encrypted_content": "", "status": "in_progress"}}))
            events += [("response.reasoning_text.delta", {
                "type": "response.reasoning_text.delta", "delta": p, "item_id": item_id})
                for p in split(text)]
            done = {"id": item_id, "summary": [], "type": "reasoning",
                    "content": [{"text": text, "type": "reasoning_text"}],
                    "encrypted_content": ""}
            closing.append(("response.output_item.done", {"type": "response.output_item.done",
                                                          "item": done}))
            output.append(done)
        elif kind == "message":
            text = _item_text(item, "output_text")
            events.append(("response.output_item.added", {
                "type": "response.output_item.added", "item": {
                    "content": [], "id": item_id, "role": "assistant", "status": "in_progress",
                    "type": "message"}}))
            events.append(("response.content_part.added", {
                "type": "response.content_part.added", "item_id": item_id,
                "part": {"type": "output_text", "text": ""}}))
            events += [("response.output_text.delta", {
                "type": "response.output_text.delta", "item_id": item_id, "delta": p})
                for p in split(text)]
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
            done = {"type": "message", "status": "completed", "id": item_id,
                    "content": [part], "role": "assistant"}
            closing += [
                ("response.output_text.done", {"type": "response.output_text.done",
                                               "item_id": item_id, "text": text}),
                ("response.content_part.done", {"type": "response.content_part.done",
                                                "item_id": item_id, "part": part}),
                ("response.output_item.done", {"type": "response.output_item.done",
                                               "item": done})]
            output.append(done)
        elif kind == "function_call":
            arguments = str(item.get("arguments", ""))
            events.append(("response.output_item.added", {
                "type": "response.output_item.added", "item": {
                    "id": item_id, "arguments": "", "call_id": item.get("call_id"),
                    "name": item.get("name"), "type": "function_call",
                    "status": "in_progress"}}))
            events += [("response.function_call_arguments.delta", {
                "type": "response.function_call_arguments.delta", "delta": p,
                "item_id": item_id}) for p in split(arguments) if p]
            done = {"id": item_id, "type": "function_call", "status": "completed",
                    "arguments": arguments, "call_id": item.get("call_id"),
                    "name": item.get("name")}
            closing.append(("response.output_item.done", {"type": "response.output_item.done",
                                                          "item": done}))
            output.append(done)
    completed: dict[str, Any] = {"type": "response.completed", "response": {
        "id": response.get("id"), "object": "response", "created_at": response.get("created_at"),
        "status": "completed", "model": response.get("model"), "output": output,
        "usage": response.get("usage")}}
    if timings is not None:
        completed["timings"] = timings
    return [*events, *closing, ("response.completed", completed)]


def interleave(streams: list[list[Event]]) -> list[Event]:
    """Several choices' streams (a Responses request with ``n`` > 1) as llama-server sends them.

    Each choice is a whole stream of its own, and llama-server decodes the choices' slots in
    one batch: every step sends one token of each choice in turn, a choice's opening events
    with its first token and its closing events right after its last.
    """
    steps: list[list[list[Event]]] = []
    for events in streams:
        deltas = [i for i, (name, _) in enumerate(events) if name.endswith(".delta")]
        if not deltas:
            steps.append([events])
            continue
        cuts = [deltas[0] + 1, *(i + 1 for i in deltas[1:-1])]
        bounds = zip([0, *cuts], [*cuts, len(events)], strict=True)
        steps.append([events[start:end] for start, end in bounds])
    out: list[Event] = []
    for step in range(max((len(s) for s in steps), default=0)):
        for choice in steps:
            if step < len(choice):
                out += choice[step]
    return out


def assemble_responses(events: list[Event]) -> dict[str, Any]:
    """The /v1/responses body a non-stream request gets, from a recorded stream."""
    completed = _event_data(events, "response.completed")
    response = completed[-1].get("response", {}) if completed else {}
    output = []
    for item in response.get("output") or []:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            output.append({"id": item.get("id"), "summary": [], "type": "reasoning",
                           "content": item.get("content"), "encrypted_content": "",
                           "status": "completed"})
        elif kind == "message":
            output.append({"content": item.get("content"), "id": item.get("id"),
                           "role": item.get("role"), "status": "completed", "type": "message"})
        else:
            output.append(item)
    created = response.get("created_at")
    return {"completed_at": created, "created_at": created, "id": response.get("id"),
            "model": response.get("model"), "object": "response", "output": output,
            "status": "completed", "usage": response.get("usage")}
