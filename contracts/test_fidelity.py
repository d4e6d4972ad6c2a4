"""Fake vs real: the same requests to fakellama and to a real llama-server, compared.

The replies must agree in structure: status, content type, JSON keys and value
types, the order and kinds of SSE events, and error bodies. Ids, timings and
wording of generated text may differ; anything else is a fidelity bug in the fake.
Runs with ``--real-llama-server`` (the fake's fixtures are recorded from that
server, so the two must agree).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from . import sample_requests as reqs
from .target import Target

pytestmark = pytest.mark.real_server


def shape(value: Any) -> Any:
    """A value's structure: dict keys with their shapes, list element shapes, JSON types."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        shapes = []
        for item in value:
            s = shape(item)
            if s not in shapes:
                shapes.append(s)
        return shapes
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "string"


def event_kind(chunk: dict[str, Any]) -> str:
    """What one SSE chunk carries: role, content, tool call parts, finish, usage."""
    choices = chunk.get("choices") or []
    if not choices:
        return "usage" if "usage" in chunk else "empty"
    choice = choices[0]
    delta = choice.get("delta") or {}
    if choice.get("finish_reason"):
        return "finish"
    if delta.get("tool_calls"):
        fn = delta["tool_calls"][0].get("function") or {}
        return "tool_call_start" if fn.get("name") else "tool_call_args"
    if delta.get("role"):
        return "role"
    if delta.get("reasoning_content"):
        return "reasoning"
    return "content" if delta.get("content") else "empty"


def sse_kinds(resp: requests.Response) -> list[str]:
    """The kinds of a stream's events, repeats collapsed, ending with [DONE]."""
    kinds: list[str] = []
    for line in resp.iter_lines(decode_unicode=True):
        if not line or not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        kind = "[DONE]" if data == "[DONE]" else event_kind(json.loads(data))
        if not kinds or kinds[-1] != kind:
            kinds.append(kind)
    return kinds


@pytest.fixture(scope="module")
def servers(target: Target) -> Iterator[tuple[str, str]]:
    """(real URL, fake URL) — the fake with its bundled fixtures."""
    if target.kind != "real" or not target.fixtures_from_here:
        # A real model answers other words and other tool calls than the scripted model
        # the fixtures were recorded from, so only that server is compared.
        pytest.skip("fidelity compares the fake with the llama-server its fixtures were "
                    "recorded from: run with --real-llama-server")
    from fakellama.server import FakeServer

    with FakeServer() as fake:
        yield target.url, fake.url


def _chat_body(request: Any, stream: bool, target: Target) -> dict[str, Any]:
    """The body the SDK sends for one of the suite's requests."""
    with target.backend() as backend:
        return backend.chat_body(request, stream=stream)


EXCHANGES = [
    ("health", "GET", "/health", None),
    ("models", "GET", "/v1/models", None),
    ("props", "GET", "/props", None),
    ("unknown route", "GET", "/v1/no-such-route", None),
    ("wrong types", "POST", "/v1/chat/completions", {"messages": "not a list"}),
]
CHATS = [("chat", reqs.chat), ("tool call", reqs.tool_call),
         ("tool result turn", reqs.tool_result_turn), ("max tokens", reqs.one_token)]


@pytest.mark.parametrize(("name", "method", "path", "body"), EXCHANGES,
                         ids=[e[0] for e in EXCHANGES])
def test_plain_exchanges_agree(servers: tuple[str, str], name: str, method: str, path: str,
                               body: Any) -> None:
    real, fake = (requests.request(method, url + path, json=body, timeout=60)
                  for url in servers)
    assert fake.status_code == real.status_code
    assert fake.headers.get("Content-Type", "").split(";")[0] == \
        real.headers.get("Content-Type", "").split(";")[0]
    if real.headers.get("Content-Type", "").startswith("application/json"):
        real_body, fake_body = real.json(), fake.json()
        assert shape(fake_body) == shape(real_body)
        if real.status_code >= 400:
            assert fake_body == real_body, "error bodies must match exactly"


def test_malformed_json_bodies_agree(servers: tuple[str, str]) -> None:
    real, fake = (requests.post(url + "/v1/chat/completions", data=b"{not json",
                                headers={"Content-Type": "application/json"}, timeout=60)
                  for url in servers)
    assert (fake.status_code, shape(fake.json())) == (real.status_code, shape(real.json()))
    assert fake.json()["error"]["type"] == real.json()["error"]["type"]


@pytest.mark.parametrize(("name", "make"), CHATS, ids=[c[0] for c in CHATS])
def test_chat_replies_agree(servers: tuple[str, str], target: Target, name: str,
                            make: Any) -> None:
    body = _chat_body(make(), False, target)
    real, fake = (requests.post(url + "/v1/chat/completions", json=body, timeout=300)
                  for url in servers)
    assert fake.status_code == real.status_code == 200
    assert shape(fake.json()) == shape(real.json())


@pytest.mark.parametrize(("name", "make"), CHATS, ids=[c[0] for c in CHATS])
def test_streamed_replies_agree(servers: tuple[str, str], target: Target, name: str,
                                make: Any) -> None:
    body = _chat_body(make(), True, target)
    real, fake = (requests.post(url + "/v1/chat/completions", json=body, stream=True,
                                timeout=300) for url in servers)
    assert fake.status_code == real.status_code == 200
    assert fake.headers["Content-Type"].split(";")[0] == \
        real.headers["Content-Type"].split(";")[0] == "text/event-stream"
    assert sse_kinds(fake) == sse_kinds(real)


def _connection_headers(url: str, ask_close: bool, stream: bool) -> dict[str, str | None]:
    """The framing and connection headers one request gets, read off a raw connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if ask_close:
        headers["Connection"] = "close"
    body = json.dumps({"messages": [{"role": "user", "content": "Say hello."}],
                       "max_tokens": 4, "stream": stream})
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        reply = conn.getresponse()
        reply.read()
        return {name: reply.getheader(name)
                for name in ("Keep-Alive", "Connection", "Transfer-Encoding")}
    finally:
        conn.close()


@pytest.mark.parametrize(("ask_close", "stream"), [(False, False), (False, True),
                                                   (True, False)],
                         ids=["kept", "kept-stream", "client-closes"])
def test_connection_handling_agrees(servers: tuple[str, str], ask_close: bool,
                                    stream: bool) -> None:
    real, fake = (_connection_headers(url, ask_close, stream) for url in servers)
    assert fake == real


# The Anthropic Messages and OpenAI Responses APIs stream named events. A request no fixture
# covers gets the fake's synthesized stream: its text differs (and so the number of delta
# events), its event names, order and fields must not. Only requests where the scripted
# model and the fake answer alike are sent: text, a cut text, a continued prefill, a forced
# tool call.
WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}},
                      "required": ["city"]}
API_STREAMS = [
    ("messages text", "/v1/messages",
     {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Tell a joke"}]}),
    ("messages max_tokens", "/v1/messages",
     {"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "Tell a joke"}]}),
    ("messages forced tool", "/v1/messages",
     {"model": "m", "max_tokens": 64, "tool_choice": {"type": "any"},
      "tools": [{"name": "get_weather", "input_schema": WEATHER_PARAMETERS}],
      "messages": [{"role": "user", "content": "Weather in Oslo?"}]}),
    ("messages prefill", "/v1/messages",
     {"model": "m", "max_tokens": 3, "messages": [
         {"role": "user", "content": "Tell a joke"},
         {"role": "assistant", "content": "<tool_call>"}]}),
    ("responses text", "/v1/responses", {"input": "Tell a joke", "max_output_tokens": 64}),
    ("responses max_output_tokens", "/v1/responses",
     {"input": "Tell a joke", "max_output_tokens": 2}),
    ("responses forced tool", "/v1/responses",
     {"input": "Weather in Oslo?", "max_output_tokens": 64, "tool_choice": "required",
      "tools": [{"type": "function", "name": "get_weather",
                 "parameters": WEATHER_PARAMETERS}]}),
]


def named_event_outline(resp: requests.Response) -> list[tuple[str, Any]]:
    """(event name, data shape) of a named-event stream, a run of equal deltas once."""
    outline: list[tuple[str, Any]] = []
    for block in resp.text.split("\n\n"):
        if not block:
            continue
        name_line, _, data_line = block.partition("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), block
        item = (name_line[len("event: "):], shape(json.loads(data_line[len("data: "):])))
        if not outline or outline[-1] != item or not item[0].endswith("delta"):
            outline.append(item)
    return outline


@pytest.mark.parametrize(("name", "path", "body"), API_STREAMS, ids=[a[0] for a in API_STREAMS])
def test_anthropic_and_responses_streams_agree(servers: tuple[str, str], name: str, path: str,
                                               body: dict[str, Any]) -> None:
    real, fake = (requests.post(url + path, json=dict(body, stream=True), timeout=300)
                  for url in servers)
    assert fake.status_code == real.status_code == 200
    assert fake.headers["Content-Type"] == real.headers["Content-Type"] == "text/event-stream"
    assert fake.headers["X-Fakellama-Match"] == "synthesized"
    assert named_event_outline(fake) == named_event_outline(real)
