"""Ollama's native /api/chat and /api/generate: what ollama-python sees, from /v1 fixtures."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests
from fake_helpers import WEATHER_TOOL, bundled

from fakellama.server import FakeServer

MODEL = "scripted-tiny.gguf"
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
# Go's time.Time in JSON: RFC 3339 in UTC, up to nine fraction digits, none trailing zero.
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")
STATS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
         "eval_count", "eval_duration")


pytestmark = pytest.mark.fake_llama(personality="ollama", strict=True)


@pytest.fixture
def ollama() -> Any:
    """ollama-python (in the test extra: the native route is checked with Ollama's own client)."""
    import ollama

    return ollama


def _chat(
    fake_llama_server: FakeServer,
    messages: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> requests.Response:
    return requests.post(
        fake_llama_server.url + "/api/chat",
        json={"model": MODEL, "messages": messages, **extra},
        headers=headers,
        timeout=10,
    )


def _lines(reply: requests.Response) -> list[dict[str, Any]]:
    assert reply.text.endswith("\n")
    return [json.loads(line) for line in reply.text.split("\n")[:-1]]


def _v1_content(fake_llama_server: FakeServer, messages: list[dict[str, Any]], **extra: Any) -> str:
    reply = requests.post(fake_llama_server.url + "/v1/chat/completions",
                          json={"model": MODEL, "messages": messages, **extra}, timeout=10)
    return str(reply.json()["choices"][0]["message"]["content"])


def test_stream_false_is_one_json_object_with_the_v1_reply_and_timings(
    fake_llama_server: FakeServer,
) -> None:
    reply = _chat(fake_llama_server, HELLO, stream=False)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.headers["X-Fakellama-Fixture"] == "chat-hello"
    body = reply.json()
    assert list(body) == ["model", "created_at", "message", "done_reason", "done", *STATS]
    assert body["model"] == MODEL
    assert CREATED_AT.match(body["created_at"])
    assert body["message"] == {
        "role": "assistant",
        "content": _v1_content(fake_llama_server, HELLO),
    }
    assert (body["done"], body["done_reason"]) == (True, "stop")
    timings = bundled("chat-hello")["response"]["body"]["timings"]
    assert body["prompt_eval_count"] == 29 and body["eval_count"] == 7  # the recorded usage
    assert body["prompt_eval_duration"] == round(timings["prompt_ms"] * 1e6)
    assert body["eval_duration"] == round(timings["predicted_ms"] * 1e6)
    assert body["total_duration"] == (body["load_duration"] + body["prompt_eval_duration"]
                                      + body["eval_duration"])


def test_stream_defaults_to_true_as_ndjson_pieces_then_a_done_line(
    fake_llama_server: FakeServer,
) -> None:
    reply = _chat(fake_llama_server, HELLO)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/x-ndjson"
    assert reply.headers["X-Fakellama-Fixture"] == "chat-hello-stream"
    *pieces, last = _lines(reply)
    assert len(pieces) > 1
    for line in pieces:
        assert list(line) == ["model", "created_at", "message", "done"]
        assert (line["model"], line["done"]) == (MODEL, False)
        assert CREATED_AT.match(line["created_at"])
        assert list(line["message"]) == ["role", "content"] and line["message"]["content"]
    streamed = "".join(p["message"]["content"] for p in pieces)
    assert streamed == _v1_content(fake_llama_server, HELLO)
    assert list(last) == ["model", "created_at", "message", "done_reason", "done", *STATS]
    assert last["message"] == {"role": "assistant", "content": ""}
    assert (last["done"], last["done_reason"]) == (True, "stop")
    assert all(isinstance(last[k], int) and last[k] > 0 for k in STATS)


def test_tool_calls_come_whole_with_object_arguments(fake_llama_server: FakeServer) -> None:
    whole = _chat(fake_llama_server, WEATHER, tools=[WEATHER_TOOL], stream=False).json()
    call = {"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    assert whole["message"]["content"] == ""
    assert [{"function": c["function"]} for c in whole["message"]["tool_calls"]] == [call]
    assert whole["done_reason"] == "stop"
    lines = _lines(_chat(fake_llama_server, WEATHER, tools=[WEATHER_TOOL]))
    with_calls = [line for line in lines if "tool_calls" in line["message"]]
    assert len(with_calls) == 1 and with_calls[0]["done"] is False
    assert with_calls[0]["message"]["tool_calls"][0]["function"] == call["function"]
    assert lines[-1]["done"] is True and "tool_calls" not in lines[-1]["message"]


def test_ollama_python_chats_streams_and_calls_tools(
    fake_llama_server: FakeServer, ollama: Any
) -> None:
    client = ollama.Client(host=fake_llama_server.url)
    reply = client.chat(model=MODEL, messages=HELLO)
    assert reply.message.content == _v1_content(fake_llama_server, HELLO)
    assert (reply.done, reply.done_reason, reply.eval_count) == (True, "stop", 7)
    parts = list(client.chat(model=MODEL, messages=HELLO, stream=True))
    assert "".join(p.message.content or "" for p in parts) == reply.message.content
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    called = client.chat(model=MODEL, messages=WEATHER, tools=[WEATHER_TOOL])
    assert called.message.tool_calls is not None
    assert called.message.tool_calls[0].function.arguments == {"city": "Paris"}


def test_a_tool_result_turn_matches_the_recorded_answer(fake_llama_server: FakeServer) -> None:
    history = [*WEATHER,
               {"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "get_weather",
                                             "arguments": {"city": "Paris"}}}]},
               {"role": "tool", "tool_name": "get_weather",
                "content": "{\"temperature_c\": 22, \"conditions\": \"sunny\"}"}]
    reply = _chat(fake_llama_server, history, tools=[WEATHER_TOOL], stream=False)
    assert reply.headers["X-Fakellama-Fixture"] == "chat-weather-answer"
    assert reply.json()["message"]["content"] == "It is sunny in Paris."


def test_options_become_the_openai_fields_a_fixture_recorded(fake_llama_server: FakeServer) -> None:
    fixture = bundled("chat-hello")
    fixture["name"] = "chat-hello-tuned"
    fixture["request"]["body"].update(model=MODEL, temperature=0.2, max_tokens=5, top_p=0.5,
                                      stop=["\n"])
    fixture["response"]["body"]["choices"][0].update(finish_reason="length")
    fixture["response"]["body"]["choices"][0]["message"]["content"] = "Hello"
    fake_llama_server.add_fixture(fixture)
    options = {"temperature": 0.2, "num_predict": 5, "top_p": 0.5, "stop": ["\n"], "seed": 7,
               "num_ctx": 2048}
    reply = requests.post(
        fake_llama_server.url + "/api/chat",
        json={"model": MODEL, "messages": HELLO, "options": options, "stream": False},
    )
    assert (reply.headers["X-Fakellama-Fixture"], reply.headers["X-Fakellama-Match"]) == (
        "chat-hello-tuned", "exact")
    assert reply.json()["message"]["content"] == "Hello"
    assert reply.json()["done_reason"] == "length"
    assert fake_llama_server.requests[-1].body["options"] == options  # the log keeps what was sent


def test_generate_answers_the_prompt_as_a_user_turn(fake_llama_server: FakeServer) -> None:
    ask = {"model": MODEL, "prompt": "Say hello."}
    whole = requests.post(
        fake_llama_server.url + "/api/generate", json=dict(ask, stream=False)
    ).json()
    assert whole["response"] == _v1_content(fake_llama_server, HELLO)
    assert list(whole) == ["model", "created_at", "response", "done", "done_reason", *STATS]
    assert (whole["done"], whole["done_reason"]) == (True, "stop")
    raw = requests.post(fake_llama_server.url + "/api/generate", json=ask)
    assert raw.headers["Content-Type"] == "application/x-ndjson"
    *pieces, last = _lines(raw)
    assert all(list(p) == ["model", "created_at", "response", "done"] for p in pieces)
    assert "".join(p["response"] for p in pieces) == whole["response"]
    assert list(last) == ["model", "created_at", "response", "done", "done_reason", *STATS]


def test_ollama_python_generates(fake_llama_server: FakeServer, ollama: Any) -> None:
    reply = ollama.Client(host=fake_llama_server.url).generate(model=MODEL, prompt="Say hello.")
    assert reply.response == _v1_content(fake_llama_server, HELLO)
    assert (reply.done, reply.done_reason, reply.eval_count) == (True, "stop", 7)


def test_no_messages_or_prompt_loads_the_model(fake_llama_server: FakeServer) -> None:
    chat = _chat(fake_llama_server, [], stream=False).json()
    assert (chat["message"], chat["done"], chat["done_reason"]) == (
        {"role": "assistant", "content": ""}, True, "load")
    assert _chat(fake_llama_server, [], keep_alive=0).json()["done_reason"] == "unload"
    generate = requests.post(fake_llama_server.url + "/api/generate", json={"model": MODEL}).json()
    assert (generate["response"], generate["done_reason"]) == ("", "load")


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"messages": HELLO}, 400, "model is required"),
    ({"model": "llama3.2", "messages": HELLO}, 404, "model 'llama3.2' not found"),
    ({"model": MODEL, "messages": "hi"}, 400,
     "json: cannot unmarshal string into Go struct field ChatRequest.messages of type "
     "[]api.Message"),
    ({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text"}]}]}, 400,
     "json: cannot unmarshal array into Go struct field ChatRequest.messages.content of type "
     "string"),
    ({"model": MODEL, "messages": HELLO, "stream": "yes"}, 400,
     "json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool"),
    ([1], 400, "json: cannot unmarshal array into Go value of type api.ChatRequest"),
])
def test_bad_requests_get_ollamas_error_naming_the_field(fake_llama_server: FakeServer, body: Any,
                                                         status: int, error: str) -> None:
    reply = requests.post(fake_llama_server.url + "/api/chat", json=body)
    assert (reply.status_code, reply.json()) == (status, {"error": error})


def test_bad_json_and_a_missing_body_are_400(fake_llama_server: FakeServer) -> None:
    bad = requests.post(fake_llama_server.url + "/api/chat", data=b"{model")
    assert (bad.status_code, bad.json()) == (
        400, {"error": "invalid character 'm' looking for beginning of object key string"})
    empty = requests.post(fake_llama_server.url + "/api/chat", data=b"")
    assert (empty.status_code, empty.json()) == (400, {"error": "missing request body"})


def test_a_prompt_over_the_context_is_truncated_and_answered_as_ollama_does() -> None:
    with FakeServer(personality="ollama", ctx_size=16) as server:
        native = _chat(server, HELLO, stream=False)
        openai = requests.post(server.url + "/v1/chat/completions",
                               json={"model": MODEL, "messages": HELLO}, timeout=10)
    assert (native.status_code, native.json()["done"]) == (200, True)
    assert openai.status_code == 200


def test_ollama_python_raises_response_error_with_the_status(fake_llama_server: FakeServer,
                                                            ollama: Any) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=fake_llama_server.url).chat(model="llama3.2", messages=HELLO)
    assert (caught.value.status_code, caught.value.error) == (404, "model 'llama3.2' not found")


def test_a_strict_miss_names_the_closest_fixtures(fake_llama_server: FakeServer) -> None:
    reply = _chat(
        fake_llama_server, [{"role": "user", "content": "Nothing recorded."}], stream=False
    )
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("fakellama: no fixture matches POST /api/chat")
    assert "'chat-hello" in reply.json()["error"]


def test_a_recorded_error_is_replayed_in_the_native_envelope(fake_llama_server: FakeServer) -> None:
    fixture = bundled("chat-hello")
    fixture["name"] = "chat-error"
    # An error recorded from Ollama (a llama-server one never answers another server).
    fixture["metadata"] = dict(fixture.get("metadata") or {}, personality="ollama")
    fixture["request"]["body"]["messages"][0]["content"] = "Fail, please."
    fixture["response"].update(status=500, body={"error": {
        "code": 500, "message": "slot unavailable", "type": "server_error"}})
    fake_llama_server.add_fixture(fixture)
    for stream in (False, True):
        reply = _chat(
            fake_llama_server, [{"role": "user", "content": "Fail, please."}], stream=stream
        )
        assert (reply.status_code, reply.json()) == (500, {"error": "slot unavailable"})


def test_thinking_is_sent_unless_think_is_false(fake_llama_server: FakeServer) -> None:
    fixture = bundled("chat-hello")
    fixture["name"] = "chat-think"
    fixture["request"]["body"]["messages"][0]["content"] = "Think first."
    message = fixture["response"]["body"]["choices"][0]["message"]
    message.update(content="Done thinking.", reasoning_content="Let me see.")
    fake_llama_server.add_fixture(fixture)
    ask = [{"role": "user", "content": "Think first."}]
    whole = _chat(fake_llama_server, ask, stream=False).json()["message"]
    assert whole == {"role": "assistant", "content": "Done thinking.", "thinking": "Let me see."}
    thoughts = [line["message"]["thinking"] for line in _lines(_chat(fake_llama_server, ask))
                if "thinking" in line["message"]]
    assert "".join(thoughts) == "Let me see."
    quiet = _lines(_chat(fake_llama_server, ask, think=False))
    assert all("thinking" not in line["message"] for line in quiet)
    assert "".join(line["message"]["content"] for line in quiet) == "Done thinking."


# -- faults: the same plans as on /v1, NDJSON lines in place of SSE events ----------------------


@pytest.mark.parametrize(("spec", "status", "error"), [
    ("status=500", 500, "Internal server error (injected fault)"),
    ("status=503", 503, "Loading model"),
])
def test_status_faults_use_the_native_error_envelope(
    fake_llama_server: FakeServer, spec: str, status: int, error: str
) -> None:
    reply = _chat(fake_llama_server, HELLO, headers={"X-Fake-Fault": spec})
    assert (reply.status_code, reply.json()) == (status, {"error": error})


def test_429_keeps_retry_after(fake_llama_server: FakeServer) -> None:
    reply = _chat(fake_llama_server, HELLO, headers={"X-Fake-Fault": "status=429,retry_after=2"})
    assert (reply.status_code, reply.headers["Retry-After"]) == (429, "2")
    assert reply.json() == {"error": "Too many requests"}


def test_per_server_loading_holds_the_native_route_until_loaded(ollama: Any) -> None:
    # Ollama loads a model on the first request that needs it and answers once it is
    # loaded: no 503 (server/sched.go); the fake holds the request as long as the load.
    with FakeServer(personality="ollama", faults="loading=0.5") as server:
        started = time.monotonic()
        reply = ollama.Client(host=server.url).chat(model=MODEL, messages=HELLO)
        waited = time.monotonic() - started
    assert reply.message.role == "assistant" and waited >= 0.4


def test_malformed_stream_breaks_the_second_line(fake_llama_server: FakeServer) -> None:
    text = _chat(fake_llama_server, HELLO, headers={"X-Fake-Fault": "malformed_sse"}).text
    first, second = text.split("\n")[:2]
    assert json.loads(first)["done"] is False
    with pytest.raises(json.JSONDecodeError):
        json.loads(second)
    whole = _chat(
        fake_llama_server, HELLO, headers={"X-Fake-Fault": "malformed_json"}, stream=False
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(whole.text)


def test_disconnect_after_cuts_the_stream_before_done(fake_llama_server: FakeServer) -> None:
    reply = requests.post(
        fake_llama_server.url + "/api/chat",
        json={"model": MODEL, "messages": HELLO},
        headers={"X-Fake-Fault": "disconnect_after=2"},
        stream=True,
    )
    got: list[bytes] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in reply.iter_lines():
            got.append(line)
    assert len([line for line in got if line]) == 2
    assert all(json.loads(line)["done"] is False for line in got if line)


def test_pacing_faults_delay_the_lines(fake_llama_server: FakeServer) -> None:
    started = time.monotonic()
    lines = _lines(
        _chat(fake_llama_server, HELLO, headers={"X-Fake-Fault": "first_token_delay=0.3"})
    )
    assert time.monotonic() - started >= 0.3 and lines[-1]["done"] is True
    started = time.monotonic()
    lines = _lines(
        _chat(fake_llama_server, HELLO, headers={"X-Fake-Fault": "tokens_per_second=50"})
    )
    assert time.monotonic() - started >= (len(lines) - 1) / 50


def test_close_drops_the_connection(fake_llama_server: FakeServer) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        _chat(fake_llama_server, HELLO, headers={"X-Fake-Fault": "close"})


def test_llamacpp_has_no_native_route() -> None:
    with FakeServer() as server:
        assert requests.post(server.url + "/api/chat", json={"model": MODEL}).status_code == 404
