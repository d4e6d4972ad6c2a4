"""Streaming: SSE framing, delta assembly, tool-call fragments and interruptions."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pedrollm.errors import ReadTimeout, StreamInterrupted
from pedrollm.streaming import iter_events
from pedrollm.types import InferenceRequest, InferenceResponse, StreamDelta, ToolCall

from .sse import chunk, completion, sse
from .test_server_client import CHAT, WEATHER
from .transport import backend_at

USAGE = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1,
         "model": "test-model", "choices": [],
         "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}


def run(server: HTTPServer, body: str, req: InferenceRequest | None = None,
        **kwargs: object) -> tuple[list[StreamDelta], InferenceResponse]:
    server.expect_request(CHAT, method="POST").respond_with_data(
        body, content_type="text/event-stream")
    c = backend_at(server.url_for("/"), **kwargs)  # type: ignore[arg-type]
    deltas = list(c.stream(req or InferenceRequest(user_prompt="hi", tools=[WEATHER])))
    final = deltas[-1].response
    assert final is not None and all(d.response is None for d in deltas[:-1])
    return deltas[:-1], final


def test_iter_events_handles_comments_crlf_multiline_and_split_bytes() -> None:
    stream = b": ping\r\n\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nevent: x\ndata: [DONE]\n\n"
    pieces = [stream[i:i + 3] for i in range(0, len(stream), 3)]
    assert list(iter_events(pieces)) == ['{"a":\n1}', "[DONE]"]


def test_iter_events_reads_ndjson_lines() -> None:
    assert list(iter_events([b'{"a": 1}\n\n{"b"', b': 2}'], ndjson=True)) == [
        '{"a": 1}', '{"b": 2}']


def test_stream_assembles_the_same_reply_as_infer(httpserver: HTTPServer) -> None:
    body = sse(chunk({"role": "assistant", "content": None}),
               chunk({"content": "Paris "}), chunk({"content": "it is."}),
               chunk({}, finish_reason="stop"), USAGE)
    deltas, final = run(httpserver, body, InferenceRequest(user_prompt="hi"))
    assert [d.content for d in deltas] == ["Paris ", "it is."]
    httpserver.clear()
    httpserver.expect_request(CHAT).respond_with_json(completion("Paris it is."))
    whole = backend_at(httpserver.url_for("/")).infer(InferenceRequest(user_prompt="hi"))
    assert final.to_dict() | {"model": None} == whole.to_dict() | {"model": None}
    assert final.usage is not None and final.usage.total_tokens == 13


def test_stream_request_asks_for_usage(httpserver: HTTPServer) -> None:
    run(httpserver, sse(chunk({"content": "x"}, "stop")), InferenceRequest(user_prompt="hi"))
    body = json.loads(httpserver.log[0][0].get_data())
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_tool_call_fragments_assemble_by_index(httpserver: HTTPServer) -> None:
    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b",
                               "function": {"name": "get_weather", "arguments": '{"city"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": ': "Rome"}'}}]}),
        chunk({}, finish_reason="tool_calls"),
    )
    deltas, final = run(httpserver, body)
    assert final.tool_calls == [ToolCall("call_a", "get_weather", {"city": "Paris"}),
                                ToolCall("call_b", "get_weather", {"city": "Rome"})]
    assert final.next_action == "CONTINUE" and final.finish_reason == "tool_calls"
    first = deltas[0].tool_call
    assert first is not None and (first.index, first.id, first.name) == (0, "call_a",
                                                                        "get_weather")


def test_whole_tool_calls_without_index_are_separate_calls(httpserver: HTTPServer) -> None:
    # Ollama sends each call complete in one chunk, without an index.
    body = sse(
        chunk({"tool_calls": [{"id": "c1", "function": {"name": "get_weather",
                                                        "arguments": '{"city": "Paris"}'}}]}),
        chunk({"tool_calls": [{"id": "c2", "function": {"name": "get_weather",
                                                        "arguments": {"city": "Rome"}}}]}),
        chunk({}, finish_reason="tool_calls"),
    )
    _, final = run(httpserver, body)
    assert [(c.id, c.args["city"]) for c in final.tool_calls] == [("c1", "Paris"), ("c2", "Rome")]


def test_ollama_reasoning_field_streams_as_reasoning(httpserver: HTTPServer) -> None:
    body = sse(chunk({"reasoning": "think "}), chunk({"reasoning": "more"}),
               chunk({"content": "done"}, "stop"))
    deltas, final = run(httpserver, body, InferenceRequest(user_prompt="hi"))
    assert [d.reasoning for d in deltas if d.reasoning] == ["think ", "more"]
    assert (final.text, final.reasoning) == ("done", "think more")


def test_malformed_streamed_arguments_are_kept_invalid(httpserver: HTTPServer) -> None:
    body = sse(chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {
        "name": "get_weather", "arguments": '{"city": '}}]}), chunk({}, "tool_calls"))
    _, final = run(httpserver, body)
    assert final.tool_calls == []
    assert final.invalid_tool_calls[0].raw == '{"city": '


def test_error_event_mid_stream_raises_with_partial_text(httpserver: HTTPServer) -> None:
    body = sse(chunk({"content": "Hello "}), chunk({"content": "wor"}),
               {"error": {"code": 500, "message": "slot crashed", "type": "server_error"}},
               done=False)
    httpserver.expect_request(CHAT).respond_with_data(body, content_type="text/event-stream")
    seen: list[str] = []
    with pytest.raises(StreamInterrupted, match="slot crashed") as info:
        for d in backend_at(httpserver.url_for("/")).stream(InferenceRequest(user_prompt="hi")):
            seen.append(d.content)
    assert seen == ["Hello ", "wor"]
    assert info.value.partial.text == "Hello wor"


def test_stream_without_done_or_finish_is_interrupted(httpserver: HTTPServer) -> None:
    body = sse(chunk({"content": "Hel"}), done=False)
    httpserver.expect_request(CHAT).respond_with_data(body, content_type="text/event-stream")
    with pytest.raises(StreamInterrupted) as info:
        list(backend_at(httpserver.url_for("/")).stream(InferenceRequest(user_prompt="hi")))
    assert info.value.partial.text == "Hel"


def test_malformed_sse_line_raises_interrupted_with_partial(httpserver: HTTPServer) -> None:
    body = sse(chunk({"content": "ok "}), "{not json", chunk({}, "stop"))
    httpserver.expect_request(CHAT).respond_with_data(body, content_type="text/event-stream")
    with pytest.raises(StreamInterrupted, match="not valid JSON") as info:
        list(backend_at(httpserver.url_for("/")).stream(InferenceRequest(user_prompt="hi")))
    assert info.value.partial.text == "ok "


def test_stall_between_chunks_interrupts_with_partial(httpserver: HTTPServer) -> None:
    import time

    def stalling(request: Request) -> Response:
        def gen():  # type: ignore[no-untyped-def]
            yield f"data: {json.dumps(chunk({'content': 'first'}))}\n\n"
            time.sleep(1.5)
            yield "data: [DONE]\n\n"
        return Response(gen(), content_type="text/event-stream")

    httpserver.expect_request(CHAT).respond_with_handler(stalling)
    c = backend_at(httpserver.url_for("/"), read_timeout=0.3)
    with pytest.raises(StreamInterrupted) as info:
        list(c.stream(InferenceRequest(user_prompt="hi")))
    assert info.value.partial.text == "first"


def test_slow_first_token_is_a_read_timeout(httpserver: HTTPServer) -> None:
    import time

    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response(sse(chunk({"content": "x"}, "stop")), content_type="text/event-stream")

    httpserver.expect_request(CHAT).respond_with_handler(slow)
    c = backend_at(httpserver.url_for("/"), read_timeout=0.3)
    with pytest.raises(ReadTimeout):
        list(c.stream(InferenceRequest(user_prompt="hi")))


def test_tool_call_markup_in_streamed_text_becomes_a_tool_call(httpserver: HTTPServer) -> None:
    from pedrollm.backends import LlamaCppBackend

    text = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n' \
           "</tool_call>"
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    body = sse(*[chunk({"content": p}) for p in pieces], chunk({}, "stop"))
    httpserver.expect_request(CHAT).respond_with_data(body, content_type="text/event-stream")
    backend = LlamaCppBackend(httpserver.url_for("/"), native_tools=False,
                              tool_call_format="hermes")
    seen = list(backend.stream(InferenceRequest(user_prompt="Weather?", tools=[WEATHER])))
    final = seen[-1].response
    assert final is not None
    shown = "".join(d.content for d in seen[:-1])
    assert "<tool_call" not in shown and shown == final.text == "Checking."
    assert [(c.name, c.args) for c in final.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert [d.tool_call.name for d in seen if d.tool_call] == ["get_weather"]
