"""SSE framing byte for byte, and one recording serving both stream and non-stream calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from fake_helpers import WEATHER_TOOL, bundled, without_fresh_ids, write_json

from fakellama.server import FakeServer

STREAM_NAME = "chat-weather-tool-call-stream"


def _events(text: str) -> list[str]:
    return [block + "\n\n" for block in text.split("\n\n") if block]


def test_stream_replays_the_recorded_bytes(fake_llama_server: FakeServer) -> None:
    recorded = bundled(STREAM_NAME)
    reply = requests.post(
        fake_llama_server.url + "/v1/chat/completions", json=recorded["request"]["body"]
    )
    assert reply.headers["Content-Type"] == "text/event-stream"
    recorded_bytes = "".join(e["raw"] for e in recorded["response"]["events"])
    assert without_fresh_ids(reply.content) == without_fresh_ids(recorded_bytes)


def test_stream_shape_is_role_then_tool_call_then_finish_then_done(
    fake_llama_server: FakeServer,
) -> None:
    body = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [WEATHER_TOOL], "stream": True}
    events = _events(requests.post(fake_llama_server.url + "/v1/chat/completions", json=body).text)
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    first_call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert first_call["function"]["name"] == "get_weather" and first_call["id"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "timings" in chunks[-1]
    assert len({c["id"] for c in chunks}) == 1


def test_include_usage_adds_an_empty_choices_usage_chunk(fake_llama_server: FakeServer) -> None:
    body = dict(bundled(STREAM_NAME)["request"]["body"], stream_options={"include_usage": True})
    events = _events(requests.post(fake_llama_server.url + "/v1/chat/completions", json=body).text)
    usage = json.loads(events[-2][6:])
    assert usage["choices"] == []
    assert usage["usage"]["total_tokens"] == (usage["usage"]["prompt_tokens"]
                                              + usage["usage"]["completion_tokens"])


def test_streamed_fixture_answers_a_non_stream_request(tmp_path: Path) -> None:
    only_stream = bundled(STREAM_NAME)
    write_json(tmp_path, "only.json", only_stream)
    with FakeServer(tmp_path, strict=True) as server:
        body = dict(only_stream["request"]["body"], stream=False)
        data = requests.post(server.url + "/v1/chat/completions", json=body).json()
    expected = bundled("chat-weather-tool-call")["response"]["body"]
    first_chunk = json.loads(only_stream["response"]["events"][0]["raw"][len("data: "):])
    assert _without_ids(data["choices"]) == _without_ids(expected["choices"])
    assert list(data) == list(expected)
    assert data["id"] != first_chunk["id"] and data["id"].startswith("chatcmpl-")


def _without_ids(choices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for choice in choices:
        message = dict(choice["message"])
        message["tool_calls"] = [{k: v for k, v in call.items() if k != "id"}
                                 for call in message.get("tool_calls", [])]
        out.append(dict(choice, message=message))
    return out


def test_non_stream_fixture_answers_a_stream_request() -> None:
    non_stream = bundled("chat-hello")
    with FakeServer(strict=True) as server:
        body = dict(non_stream["request"]["body"], stream=True)
        events = _events(requests.post(server.url + "/v1/chat/completions", json=body).text)
    assert events[-1] == "data: [DONE]\n\n"
    text = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1] if json.loads(e[6:])["choices"])
    assert text == non_stream["response"]["body"]["choices"][0]["message"]["content"]
