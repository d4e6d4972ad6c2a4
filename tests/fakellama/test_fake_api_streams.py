"""Streams on the Anthropic Messages (/v1/messages) and OpenAI Responses (/v1/responses) APIs.

The bundled fixtures hold each API's stream as the pinned llama-server sent it (scripted
model); a request no fixture covers gets a synthesized stream that must have the same
events, in the same order, with the same fields, whatever its text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
import requests

from fakellama.convert import assemble, split
from fakellama.fixtures import Fixture, bundled_dir, load_dir
from fakellama.server import FakeServer

MESSAGES = "/v1/messages"
RESPONSES = "/v1/responses"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}
ANTHROPIC_WEATHER = {"name": "get_weather", "description": "Get the current weather for a city",
                     "input_schema": WEATHER_SCHEMA}
RESPONSES_WEATHER = {"type": "function", "name": "get_weather",
                     "description": "Get the current weather for a city",
                     "parameters": WEATHER_SCHEMA}


def _recorded(name: str) -> Fixture:
    fixtures = {f.name: f for f in load_dir(bundled_dir("llamacpp"))}
    return fixtures[name]


def _parse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each block of a named-event stream; fails on any other block."""
    out = []
    for block in raw.split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), block
        data = json.loads(data_line[len("data: "):])
        assert data["type"] == name_line[len("event: "):]
        out.append((name_line[len("event: "):], data))
    return out


def _stream(fake: FakeServer, path: str, body: dict[str, Any]) -> tuple[
        requests.Response, list[tuple[str, dict[str, Any]]]]:
    reply = requests.post(fake.url + path, json=dict(body, stream=True), timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "text/event-stream"
    return reply, _parse(reply.text)


def _shape(value: Any) -> Any:
    """Keys and JSON types, not values: what the client's parser relies on."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def _outline(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Events with a run of deltas counted once: the sequence whatever the text's length.

    Deltas are the only events whose number follows the text; their shape is compared
    too, with the content of each delta reduced to its type.
    """
    out: list[tuple[str, Any]] = []
    for name, data in events:
        item = (name, _shape(data))
        if not out or out[-1] != item or not name.endswith("delta"):
            out.append(item)
    return out


def _recorded_events(name: str) -> list[tuple[str, dict[str, Any]]]:
    fixture = _recorded(name)
    assert fixture.events is not None
    return _parse("".join(e.raw for e in fixture.events))


def _timings_free(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    return [(n, {k: v for k, v in d.items() if k != "timings"}) for n, d in events]


# -- Anthropic Messages --------------------------------------------------------------------------


def test_a_recorded_anthropic_stream_is_replayed_with_fresh_ids(
        fake_llama_server: FakeServer) -> None:
    body = {"model": "scripted-tiny.gguf", "max_tokens": 8,
            "messages": [{"role": "user", "content": "Say hello."}]}
    reply, events = _stream(fake_llama_server, MESSAGES, body)
    assert reply.headers["X-Fakellama-Fixture"] == "anthropic-hello-stream"
    recorded = _recorded_events("anthropic-hello-stream")
    assert [n for n, _ in events] == [n for n, _ in recorded]
    assert events[0][1]["message"]["id"] != recorded[0][1]["message"]["id"]
    assert "[DONE]" not in reply.text  # llama-server ends these streams with message_stop


def test_a_synthesized_anthropic_stream_has_the_recorded_events_and_says_so(
        fake_llama_server: FakeServer) -> None:
    body = {"model": "m", "max_tokens": 64, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Tell a joke"}]}]}
    reply, events = _stream(fake_llama_server, MESSAGES, body)
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    assert _outline(events) == _outline(_recorded_events("anthropic-hello-stream"))
    deltas = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert "".join(deltas) == "fakellama: Tell a joke"
    assert all(len(piece) == 1 for piece in deltas)  # one token per event
    assert events[-2][1]["usage"]["output_tokens"] == len("fakellama: Tell a joke")
    whole = requests.post(fake_llama_server.url + MESSAGES, json=body, timeout=10).json()
    assert events[0][1]["message"]["usage"]["input_tokens"] == whole["usage"]["input_tokens"]
    assert whole["content"] == [{"type": "text", "text": "fakellama: Tell a joke"}]


def test_max_tokens_ends_an_anthropic_stream_with_max_tokens(
        fake_llama_server: FakeServer) -> None:
    body = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
    _, events = _stream(fake_llama_server, MESSAGES, body)
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert final["usage"] == {"output_tokens": 4}
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == "fake"


def test_a_stop_sequence_ends_the_turn_and_is_named(fake_llama_server: FakeServer) -> None:
    body = {"model": "m", "max_tokens": 64, "stop_sequences": [":"],
            "messages": [{"role": "user", "content": "Hi"}]}
    _, events = _stream(fake_llama_server, MESSAGES, body)
    # As llama-server's to_json_anthropic_stream: end_turn, the word in stop_sequence.
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": ":"}
    whole = requests.post(fake_llama_server.url + MESSAGES, json=body, timeout=10).json()
    assert (whole["stop_reason"], whole["stop_sequence"]) == ("end_turn", ":")
    assert whole["content"][0]["text"] == "fakellama"


@pytest.mark.parametrize("choice", [{"type": "any"},
                                    {"type": "tool", "name": "get_weather"}])
def test_a_forced_tool_is_streamed_as_a_tool_use_block_like_the_recorded_call(
        fake_llama_server: FakeServer, choice: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 256, "tools": [ANTHROPIC_WEATHER], "tool_choice": choice,
            "messages": [{"role": "user", "content": "Weather in Oslo?"}]}
    reply, events = _stream(fake_llama_server, MESSAGES, body)
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    assert _outline(events) == _outline(_recorded_events("anthropic-weather-tool-call-stream"))
    block = events[1][1]["content_block"]
    assert (block["type"], block["name"]) == ("tool_use", "get_weather")
    arguments = json.loads("".join(d["delta"]["partial_json"] for n, d in events
                                   if n == "content_block_delta"))
    jsonschema.validate(arguments, WEATHER_SCHEMA)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    whole = requests.post(fake_llama_server.url + MESSAGES, json=body, timeout=10).json()
    assert whole["stop_reason"] == "tool_use"
    assert [(b["type"], b["name"]) for b in whole["content"]] == [("tool_use", "get_weather")]
    jsonschema.validate(whole["content"][0]["input"], WEATHER_SCHEMA)


# -- OpenAI Responses ----------------------------------------------------------------------------


def test_a_synthesized_responses_stream_has_the_recorded_events_and_says_so(
        fake_llama_server: FakeServer) -> None:
    reply, events = _stream(fake_llama_server, RESPONSES, {"input": "Tell a joke"})
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    assert _outline(events) == _outline(_recorded_events("responses-hello-stream"))
    deltas = [d["delta"] for n, d in events if n == "response.output_text.delta"]
    assert "".join(deltas) == "fakellama: Tell a joke"
    assert "[DONE]" not in reply.text
    # One id per response and per item, used by every event that names them.
    response_ids = {d["response"]["id"] for n, d in events if "response" in d}
    item_ids = {d.get("item_id") or d["item"]["id"] for n, d in events
                if "item_id" in d or "item" in d}
    assert len(response_ids) == len(item_ids) == 1
    completed = events[-1][1]["response"]
    whole = requests.post(fake_llama_server.url + RESPONSES, json={"input": "Tell a joke"},
                          timeout=10).json()
    assert completed["usage"] == whole["usage"]
    assert completed["output"][0]["content"] == whole["output"][0]["content"]


def test_max_output_tokens_cuts_a_responses_stream(fake_llama_server: FakeServer) -> None:
    _, events = _stream(fake_llama_server, RESPONSES, {"input": "Hi", "max_output_tokens": 3})
    assert [d["delta"] for n, d in events if n == "response.output_text.delta"] == list("fak")
    completed = events[-1][1]["response"]
    # llama-server reports every response "completed", a cut one included.
    assert (completed["status"], completed["usage"]["output_tokens"]) == ("completed", 3)


def test_a_required_tool_is_streamed_as_a_function_call_like_the_recorded_one(
        fake_llama_server: FakeServer) -> None:
    body = {"input": "Weather in Oslo?", "tools": [RESPONSES_WEATHER], "tool_choice": "required"}
    reply, events = _stream(fake_llama_server, RESPONSES, body)
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    recorded = _recorded_events("responses-weather-tool-call-stream")
    assert _outline(events) == _outline(recorded)
    item = events[2][1]["item"]
    assert item["id"][3:] == item["call_id"][5:]  # fc_X and call_X: one id, two prefixes
    arguments = "".join(d["delta"] for n, d in events
                        if n == "response.function_call_arguments.delta")
    jsonschema.validate(json.loads(arguments), WEATHER_SCHEMA)
    assert events[-1][1]["response"]["output"][0]["arguments"] == arguments


def test_a_recorded_responses_replay_keeps_its_ids_paired(fake_llama_server: FakeServer) -> None:
    body = {"input": "What is the weather in Paris?", "max_output_tokens": 64,
            "tools": [RESPONSES_WEATHER]}
    reply, events = _stream(fake_llama_server, RESPONSES, body)
    assert reply.headers["X-Fakellama-Fixture"] == "responses-weather-tool-call-stream"
    recorded = _recorded_events("responses-weather-tool-call-stream")
    assert _timings_free(events)[3:-1] != _timings_free(recorded)[3:-1]  # ids are fresh
    item = events[2][1]["item"]
    assert item["id"][3:] == item["call_id"][5:]
    assert {d["item_id"] for n, d in events if "item_id" in d} == {item["id"]}
    assert events[-1][1]["response"]["output"][0]["call_id"] == item["call_id"]


# -- both APIs: one reply in either form, validation first, labelled -------------------------------


def _only(fixture: dict[str, Any], directory: Path) -> FakeServer:
    """A fake holding this one fixture (and not the other form of it)."""
    (directory / "only.json").write_text(json.dumps(fixture), encoding="utf-8")
    return FakeServer(directory)


@pytest.mark.parametrize("name", ["anthropic-hello", "anthropic-weather-tool-call",
                                  "responses-hello", "responses-weather-tool-call"])
def test_a_whole_recorded_reply_answers_a_stream_request_in_the_apis_own_events(
        name: str, tmp_path: Path) -> None:
    whole = _recorded(name).to_json()
    streamed = _recorded_events(name + "-stream")
    with _only(whole, tmp_path) as fake:
        reply, events = _stream(fake, whole["request"]["path"], whole["request"]["body"])
    assert reply.headers["X-Fakellama-Match"] == "exact"
    assert _outline(events) == _outline(streamed)


@pytest.mark.parametrize("name", ["anthropic-hello-stream", "anthropic-weather-tool-call-stream",
                                  "responses-hello-stream", "responses-weather-tool-call-stream"])
def test_a_recorded_stream_answers_a_whole_request_with_the_recorded_whole_reply(
        name: str, tmp_path: Path) -> None:
    streamed = _recorded(name).to_json()
    whole = _recorded(name.removesuffix("-stream")).response_body
    body = {k: v for k, v in streamed["request"]["body"].items() if k != "stream"}
    with _only(streamed, tmp_path) as fake:
        reply = requests.post(fake.url + streamed["request"]["path"], json=body, timeout=10)
    assert reply.headers["X-Fakellama-Match"] == "exact"
    assembled = reply.json()
    assert _shape(assembled) == _shape(whole)
    assert json.dumps(assembled["content" if "content" in whole else "output"]).count(
        "get_weather") == json.dumps(whole.get("content") or whole.get("output")).count(
        "get_weather")


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    (MESSAGES, {"max_tokens": 8}, 500, "'messages' is required"),
    (RESPONSES, {"input": 5}, 400, "'input' must be a string or array of objects"),
    (RESPONSES, {"input": "Hi", "previous_response_id": "resp_1"}, 400,
     "llama.cpp does not support 'previous_response_id'."),
])
def test_an_invalid_stream_request_gets_llama_servers_error_not_a_stream(
        fake_llama_server: FakeServer, path: str, body: dict[str, Any], status: int,
        message: str) -> None:
    reply = requests.post(fake_llama_server.url + path, json=dict(body, stream=True), timeout=10)
    assert (reply.status_code, reply.headers["X-Fakellama-Match"]) == (status, "validation")
    assert reply.json()["error"]["message"] == message


def test_the_request_log_says_a_stream_was_synthesized() -> None:
    lines: list[str] = []
    with FakeServer(request_log=lines.append) as fake:
        _stream(fake, RESPONSES, {"input": "Tell a joke"})
        _stream(fake, MESSAGES, {"model": "m", "max_tokens": 8,
                                 "messages": [{"role": "user", "content": "Say hello."}]})
    assert lines == ["POST /v1/responses 200 synthesized",
                     "POST /v1/messages 200 exact anthropic-hello-stream"]


def test_strict_mode_refuses_an_unrecorded_stream() -> None:
    with FakeServer(strict=True) as fake:
        reply = requests.post(fake.url + MESSAGES, timeout=10, json={
            "model": "m", "max_tokens": 8, "stream": True,
            "messages": [{"role": "user", "content": "Tell a joke"}]})
    assert reply.status_code == 400
    assert "closest: 'anthropic-hello" in reply.json()["error"]["message"]


# -- a real client library -------------------------------------------------------------------------


def test_openai_python_consumes_a_synthesized_responses_stream(
        fake_llama_server: FakeServer) -> None:
    client = openai.OpenAI(base_url=fake_llama_server.url + "/v1", api_key="unused",
                           max_retries=0)
    events = list(client.responses.create(model="m", input="Tell a joke", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "fakellama: Tell a joke" == events[-1].response.output_text
    called = list(client.responses.create(
        model="m", input="Weather in Oslo?", stream=True, tools=[RESPONSES_WEATHER],
        tool_choice="required"))
    call = called[-1].response.output[0]
    assert (call.type, call.name) == ("function_call", "get_weather")
    jsonschema.validate(json.loads(call.arguments), WEATHER_SCHEMA)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0}),
    (MESSAGES, {"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "Hi"}]}),
    (RESPONSES, {"input": "Hi", "max_output_tokens": 0}),
])
def test_a_token_limit_of_zero_still_gives_one_token_as_llama_server_does(
        fake_llama_server: FakeServer, path: str, body: dict[str, Any]) -> None:
    # llama-server checks the budget only after it generated a token.
    reply = requests.post(fake_llama_server.url + path, json=body, timeout=10).json()
    usage = reply["usage"]
    assert usage.get("completion_tokens", usage.get("output_tokens")) == 1


def test_several_responses_choices_are_whole_responses_interleaved_token_by_token(
        fake_llama_server: FakeServer) -> None:
    # What the pinned llama-server sent for n=2: one response per choice, both decoded in
    # one batch, each choice's closing events right after its last token.
    body = {"input": "Hi", "n": 2, "max_output_tokens": 3}
    _, events = _stream(fake_llama_server, RESPONSES, body)
    owner: dict[str, int] = {}  # response and item ids -> the choice they belong to
    choices = 0
    for name, data in events:
        if name == "response.created":
            owner[data["response"]["id"]] = choices
            choices += 1
        elif name == "response.output_item.added":
            owner[data["item"]["id"]] = choices - 1  # the response opened just before
    seen = [(owner[(d.get("response") or {}).get("id") or d.get("item_id")
                   or d["item"]["id"]], n.removeprefix("response.")) for n, d in events]
    opening = ["created", "in_progress", "output_item.added", "content_part.added",
               "output_text.delta"]
    closing = ["output_text.done", "content_part.done", "output_item.done", "completed"]
    assert seen == ([(0, n) for n in opening] + [(1, n) for n in opening]
                    + [(0, "output_text.delta"), (1, "output_text.delta"),
                       (0, "output_text.delta")] + [(0, n) for n in closing]
                    + [(1, "output_text.delta")] + [(1, n) for n in closing])
    whole = requests.post(fake_llama_server.url + RESPONSES, json=body, timeout=10).json()
    assert [r["output"][0]["content"][0]["text"] for r in whole] == ["fak", "fak"]
    assert whole[0]["id"] != whole[1]["id"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", MESSAGES])
def test_a_prefilled_assistant_turn_is_not_counted_and_streams_with_the_first_token(
        fake_llama_server: FakeServer, path: str) -> None:
    # As the pinned llama-server: the reply starts with the prefill, max_tokens counts
    # only the tokens after it, and the first streamed delta carries the prefill.
    body = {"model": "m", "max_tokens": 3,
            "messages": [{"role": "user", "content": "Say hi."},
                         {"role": "assistant", "content": "Hello"}]}
    whole = requests.post(fake_llama_server.url + path, json=body, timeout=10).json()
    if path == MESSAGES:
        text, tokens = whole["content"][0]["text"], whole["usage"]["output_tokens"]
    else:
        text = whole["choices"][0]["message"]["content"]
        tokens = whole["usage"]["completion_tokens"]
    assert (text, tokens) == ("Hello fa", 3)
    reply = requests.post(fake_llama_server.url + path, json=dict(body, stream=True),
                          timeout=10)
    if path == MESSAGES:
        pieces = [d["delta"]["text"] for n, d in _parse(reply.text)
                  if n == "content_block_delta"]
    else:
        chunks = [json.loads(b[len("data: "):]) for b in reply.text.split("\n\n")
                  if b.startswith("data: {")]
        pieces = [c["choices"][0]["delta"]["content"] for c in chunks
                  if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert pieces == ["Hello ", "f", "a"]


def test_malformed_sse_cuts_a_named_events_data_and_keeps_its_name(
        fake_llama_server: FakeServer) -> None:
    reply = requests.post(fake_llama_server.url + MESSAGES, timeout=10,
                          headers={"X-Fake-Fault": "malformed_sse"},
                          json={"model": "m", "max_tokens": 8, "stream": True,
                                "messages": [{"role": "user", "content": "Tell a joke"}]})
    second = reply.text.split("\n\n")[1]
    name, data = second.split("\n")
    assert name == "event: content_block_start"
    with pytest.raises(json.JSONDecodeError):
        json.loads(data.removeprefix("data: "))


def test_thinking_and_reasoning_split_into_llama_servers_blocks_and_assemble_back() -> None:
    # No scripted recording has reasoning; the order is server-task.cpp's: thinking (or
    # reasoning) first, its signature_delta just before the blocks close, then text.
    message = {"id": "chatcmpl-x", "type": "message", "role": "assistant", "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},
        {"type": "text", "text": "Hi there"}], "model": "m", "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"cache_read_input_tokens": 0, "input_tokens": 5, "output_tokens": 6}}
    events = split(message, False)
    parsed = _parse("".join(e.raw for e in events))
    assert [(n, d.get("index"), (d.get("delta") or {}).get("type")) for n, d in parsed] == [
        ("message_start", None, None), ("content_block_start", 0, None),
        ("content_block_delta", 0, "thinking_delta"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"), ("content_block_start", 1, None),
        ("content_block_delta", 1, "text_delta"), ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 0, "signature_delta"), ("content_block_stop", 0, None),
        ("content_block_stop", 1, None), ("message_delta", None, None),
        ("message_stop", None, None)]
    assert assemble(events) == (200, message)
    response = {"completed_at": 1, "created_at": 1, "id": "resp_x", "model": "m",
                "object": "response", "output": [
                    {"id": "rs_x", "summary": [], "type": "reasoning",
                     "content": [{"text": "Let me think.", "type": "reasoning_text"}],
                     "encrypted_content": "", "status": "completed"},
                    {"content": [{"type": "output_text", "annotations": [], "logprobs": [],
                                  "text": "Hi there"}],
                     "id": "msg_x", "role": "assistant", "status": "completed",
                     "type": "message"}],
                "status": "completed", "usage": {"input_tokens": 5, "output_tokens": 6,
                                                 "total_tokens": 11,
                                                 "input_tokens_details": {"cached_tokens": 0}}}
    events = split(response, False)
    names = [n for n, _ in _parse("".join(e.raw for e in events))]
    assert names[2:4] == ["response.output_item.added", "response.reasoning_text.delta"]
    assert names[-5:] == ["response.output_item.done", "response.output_text.done",
                          "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert assemble(events) == (200, response)
