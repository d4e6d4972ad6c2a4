"""What hostile servers and awkward secrets did to the SDK, each pinned by a test.

Every server here is a local stand-in on loopback (pytest-httpserver); replies are
written by hand. The cases come from an adversarial round (see docs/reliability.md).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pedrollm import (
    ConfigError,
    DeadlineExceeded,
    InferenceRequest,
    InvalidResponse,
    RequestValidationError,
    ResponseTooLarge,
    ToolDefinition,
)
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.client import RetryPolicy
from tests.sse import chunk, completion, sse
from tests.transport import backend_at

CHAT = "/v1/chat/completions"
HI = InferenceRequest(user_prompt="hi")
MIB = 1024 * 1024
TOOL = ToolDefinition(name="f", parameters={"type": "object", "properties": {}})


def _no_retry(server: HTTPServer, **kw: object) -> OpenAIBackend:
    return backend_at(server.url_for("/"), retry=RetryPolicy(max_retries=0), **kw)


# -- 1. API keys a header cannot carry --------------------------------------------------


def test_a_key_read_with_its_trailing_newline_is_sent_without_it(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT, headers={"Authorization": "Bearer sk-abc"}
                              ).respond_with_json(completion("ok"))
    with OpenAIBackend(httpserver.url_for("/"), api_key="sk-abc\n") as llm:
        assert llm.infer(HI).text == "ok"


@pytest.mark.parametrize("key", ["sk-caf\u00e9\u20ac", "sk-a\nb", "sk a", "sk-\x7f"])
def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        OpenAIBackend("http://127.0.0.1:9", api_key=key)
    assert "model.api_key" in str(info.value)
    assert key.strip() not in str(info.value) and key.strip() not in repr(info.value)
    assert "sk" not in str(info.value).split("model.api_key", 1)[1]


# -- 2. tool-call arguments nested past the recursion limit ----------------------------


DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_native_arguments_become_an_invalid_call(httpserver: HTTPServer) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": DEEP}}
    httpserver.expect_request(CHAT).respond_with_json(
        completion(None, tool_calls=[call], finish_reason="tool_calls"))
    resp = _no_retry(httpserver).infer(InferenceRequest(user_prompt="x", tools=[TOOL]))
    assert resp.tool_calls == []
    assert [bad.name for bad in resp.invalid_tool_calls] == ["f"]
    assert "nested too deeply" in resp.invalid_tool_calls[0].error


def test_deeply_nested_streamed_arguments_become_an_invalid_call(
        httpserver: HTTPServer) -> None:
    frag = {"index": 0, "id": "c1", "type": "function",
            "function": {"name": "f", "arguments": DEEP}}
    body = sse(chunk({"tool_calls": [frag]}), chunk({}, finish_reason="tool_calls"))
    httpserver.expect_request(CHAT).respond_with_data(body, content_type="text/event-stream")
    deltas = list(_no_retry(httpserver).stream(InferenceRequest(user_prompt="x", tools=[TOOL])))
    final = deltas[-1].response
    assert final is not None and final.tool_calls == []
    assert [bad.name for bad in final.invalid_tool_calls] == ["f"]


# -- 3 and 4. replies too large, on the wire or once decompressed -----------------------


def test_one_endless_sse_line_ends_at_the_size_cap(httpserver: HTTPServer) -> None:
    def endless(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b'data: {"choices":[{"delta":{"content":"'
            for _ in range(64):  # 4 MiB of one line, never ended
                yield b"x" * 65536
        return Response(body(), content_type="text/event-stream")

    httpserver.expect_request(CHAT).respond_with_handler(endless)
    llm = _no_retry(httpserver, max_response_bytes=MIB)
    with pytest.raises(ResponseTooLarge, match="size cap of 1048576 bytes") as info:
        list(llm.stream(HI))
    assert info.value.partial is not None


def test_a_reply_larger_than_the_cap_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("x" * (2 * MIB)))
    with pytest.raises(ResponseTooLarge, match="max_response_bytes"):
        _no_retry(httpserver, max_response_bytes=MIB).infer(HI)


def _gzip_bomb(inner: bytes) -> Response:
    return Response(gzip.compress(inner, 9), content_type="application/json",
                    headers={"Content-Encoding": "gzip"})


def test_a_gzip_bomb_is_capped_after_decompression(httpserver: HTTPServer) -> None:
    bomb = b'{"choices":[{"message":{"content":"' + b"0" * (32 * MIB) + b'"}}]}'
    httpserver.expect_request(CHAT).respond_with_response(_gzip_bomb(bomb))
    with pytest.raises(ResponseTooLarge):
        _no_retry(httpserver, max_response_bytes=MIB).infer(HI)


def test_a_gzip_bomb_in_a_stream_is_capped_after_decompression(httpserver: HTTPServer) -> None:
    bomb = sse(chunk({"content": "hi"}), done=False).encode() + b": " + b"0" * (32 * MIB)
    response = _gzip_bomb(bomb)
    response.headers["Content-Type"] = "text/event-stream"
    httpserver.expect_request(CHAT).respond_with_response(response)
    with pytest.raises(ResponseTooLarge):
        list(_no_retry(httpserver, max_response_bytes=MIB).stream(HI))


def test_a_reply_within_the_cap_still_arrives_whole(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_response(
        _gzip_bomb(json.dumps(completion("y" * 1000)).encode()))
    assert _no_retry(httpserver, max_response_bytes=MIB).infer(HI).text == "y" * 1000


# -- 5. a total deadline, whatever trickles in ------------------------------------------


def test_a_stream_of_pings_ends_at_the_deadline_with_the_partial_text(
        httpserver: HTTPServer) -> None:
    def pings(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield sse(chunk({"content": "Hello"}), done=False).encode()
            for _ in range(50):  # 10 s of keep-alive comments, each inside the read timeout
                time.sleep(0.2)
                yield b": ping\n\n"
        return Response(body(), content_type="text/event-stream")

    httpserver.expect_request(CHAT).respond_with_handler(pings)
    llm = _no_retry(httpserver, read_timeout=3.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="deadline of 1s") as info:
        list(llm.stream(InferenceRequest(user_prompt="hi", deadline=1.0)))
    assert time.monotonic() - started < 5.0  # bounded by the deadline, not the 10 s server
    assert info.value.partial is not None and info.value.partial.text == "Hello"


def test_a_body_one_byte_at_a_time_ends_at_the_backends_deadline(
        httpserver: HTTPServer) -> None:
    payload = json.dumps(completion("slow")).encode()

    def trickle(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for i in range(len(payload)):
                time.sleep(0.05)
                yield payload[i:i + 1]
        return Response(body(), content_type="application/json")

    httpserver.expect_request(CHAT).respond_with_handler(trickle)
    llm = _no_retry(httpserver, read_timeout=3.0, deadline=1.0)
    with pytest.raises(DeadlineExceeded):
        llm.infer(HI)


@pytest.mark.parametrize("deadline", [0, -1, float("nan"), float("inf")])
def test_a_deadline_that_is_not_a_positive_time_is_refused(deadline: float) -> None:
    with pytest.raises(RequestValidationError, match="deadline"):
        OpenAIBackend("http://127.0.0.1:9").infer(
            InferenceRequest(user_prompt="x", deadline=deadline))
    with pytest.raises(ConfigError, match="model.deadline"):
        OpenAIBackend("http://127.0.0.1:9", deadline=deadline)


# -- 6. a body JSON cannot carry --------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"deep": [1, float("-inf")]},
                                   {1: "not a string key"}, object()])
def test_a_body_json_cannot_carry_is_refused_before_sending(value: object) -> None:
    # Port 9 is closed: a request that reached the network would fail differently.
    llm = OpenAIBackend("http://127.0.0.1:9")
    with pytest.raises(RequestValidationError) as info:
        llm.infer(InferenceRequest(user_prompt="x", extra={"bad": value}))
    assert info.value.field.startswith("extra.bad")


# -- 7. infer and stream agree on a malformed message -----------------------------------


def test_a_message_that_is_a_list_is_invalid_in_infer_and_in_stream(
        httpserver: HTTPServer) -> None:
    body = completion("x")
    body["choices"][0]["message"] = [{"role": "assistant", "content": "x"}]
    streamed = sse({"id": "c", "object": "chat.completion.chunk", "created": 1,
                    "model": "m", "choices": [{"index": 0, "delta": ["x"]}]})
    httpserver.expect_ordered_request(CHAT).respond_with_json(body)
    httpserver.expect_ordered_request(CHAT).respond_with_data(
        streamed, content_type="text/event-stream")
    llm = _no_retry(httpserver)
    with pytest.raises(InvalidResponse):
        llm.infer(HI)
    with pytest.raises(InvalidResponse):
        list(llm.stream(HI))
