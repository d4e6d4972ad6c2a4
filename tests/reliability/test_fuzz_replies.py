"""Whatever a server sends back, the SDK returns a valid reply or raises a PedroLLMError.

Replies are generated: status codes, headers (encodings, Retry-After, content types),
JSON bodies shaped like chat completions with any field of any type, bodies that are
not JSON, and SSE streams mixing valid chunks, tool-call fragments, errors, comments,
broken JSON, stray bytes and early ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pedrollm import errors
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.client import RetryPolicy
from pedrollm.types import (
    InferenceRequest,
    InferenceResponse,
    InvalidToolCall,
    StreamDelta,
    ToolCall,
    ToolDefinition,
    Usage,
)
from tests.reliability.canned import CannedServer
from tests.transport import backend_at

WEATHER = ToolDefinition(name="get_weather", description="Weather for a city", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})

# -- strategies ---------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
)
TOOL_TEXT = st.sampled_from([
    '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
    '<tool_call>{"name": "get_weather", "arguments": "oops"}</tool_call>',
    '<tool_call>{"name": "get_weather", "argu',
    "<think>hmm</think>It is sunny.",
    "</think>left over",
])
texts = st.text(max_size=30) | TOOL_TEXT


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the valid shape, sometimes any JSON value in its place."""
    return st.one_of(valid, valid, json_values)


def optional_fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict holding any subset of the given fields, each maybe of the wrong type."""
    return st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})


arguments = st.text(max_size=30) | st.just('{"city": "Paris"}') | st.dictionaries(
    st.text(max_size=5), scalars, max_size=3)
function = optional_fields(name=st.sampled_from(["get_weather", "", "other"]) | st.text(),
                           arguments=arguments)
tool_call = optional_fields(id=st.text(max_size=8), type=st.just("function"), function=function)
fragment = optional_fields(index=st.integers(-2, 3), id=st.text(max_size=8), function=function)
usage = optional_fields(prompt_tokens=st.integers(-5, 2 ** 40),
                        completion_tokens=st.integers(-5, 2 ** 40),
                        total_tokens=st.integers(-5, 2 ** 40))
timings = optional_fields(prompt_n=st.integers(), predicted_ms=st.floats(allow_nan=True),
                          predicted_per_second=st.floats(), cache_n=st.integers())
message = optional_fields(role=st.just("assistant"), content=texts, reasoning_content=texts,
                          reasoning=texts, tool_calls=st.lists(maybe(tool_call), max_size=3))
finish = st.sampled_from(["stop", "length", "tool_calls"])
choice = optional_fields(index=st.integers(0, 2), message=message, finish_reason=finish)
completion = optional_fields(
    id=st.text(max_size=8), object=st.just("chat.completion"), model=st.text(max_size=10),
    choices=st.lists(maybe(choice), max_size=3), usage=usage, timings=timings,
)
delta = optional_fields(role=st.just("assistant"), content=texts, reasoning_content=texts,
                        tool_calls=st.lists(maybe(fragment), max_size=2))
stream_choice = optional_fields(index=st.just(0), delta=delta, finish_reason=finish,
                                message=message)
chunk = optional_fields(
    object=st.just("chat.completion.chunk"), model=st.text(max_size=10),
    choices=st.lists(maybe(stream_choice), max_size=2), usage=usage, timings=timings,
    error=optional_fields(message=st.text(max_size=20), type=st.text(max_size=10)),
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


sse_lines = st.one_of(
    chunk.map(lambda c: "data: " + _dumps(c)),
    chunk.map(lambda c: "data: " + _dumps(c)),
    st.just("data: [DONE]"),
    json_values.map(lambda v: "data: " + _dumps(v)),
    st.text(max_size=30).map(lambda t: "data: " + t),
    st.sampled_from([": ping", "event: message", "id: 7", "retry: 100", "data:", "data: {"]),
    st.text(max_size=30),
)
header_names = st.sampled_from(["Retry-After", "Content-Encoding", "Content-Type",
                                "X-Request-Id", "Server", "Cache-Control"])
header_values = st.one_of(
    st.sampled_from(["gzip", "deflate", "br", "identity", "1", "0.01", "-3", "nan", "1e400",
                     "application/json", "text/event-stream", "application/x-ndjson"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=3)
statuses = st.one_of(st.just(200), st.just(200), st.integers(200, 599))


@st.composite
def stream_bodies(draw: st.DrawFn) -> bytes:
    """An SSE (or NDJSON) body: events, framing, stray bytes and an optional early end."""
    lines = draw(st.lists(sse_lines, max_size=8))
    separator = draw(st.sampled_from(["\n\n", "\r\n\r\n", "\n"]))
    body = separator.join(lines).encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        body += separator.encode()
    if draw(st.integers(0, 5)) == 0:
        body += draw(st.binary(max_size=8))
    if draw(st.integers(0, 4)) == 0 and body:
        body = body[: draw(st.integers(0, len(body)))]
    return body


@st.composite
def completion_bodies(draw: st.DrawFn) -> bytes:
    """A non-streamed body: a completion-shaped object, any JSON, an error, or not JSON."""
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        return _dumps(draw(completion)).encode()
    if kind == 5:
        return _dumps(draw(json_values)).encode()
    if kind == 6:
        err = draw(optional_fields(message=st.text(max_size=30), type=st.text(max_size=12),
                                   n_ctx=st.integers(), n_prompt_tokens=st.integers()))
        return _dumps({"error": err}).encode()
    if kind == 7:
        text = _dumps(draw(completion))
        return text[: draw(st.integers(0, len(text)))].encode()
    return draw(st.binary(max_size=40))


# -- the server and the checks ------------------------------------------------------------


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedServer]:
    server = CannedServer().start()
    yield server
    server.stop()


def _client(url: str, with_tools: bool) -> OpenAIBackend:
    """A backend that retries once without waiting (the replies do not change anyway).

    Tools in the request make it read calls from text in the hermes format.
    """
    return backend_at(url, read_timeout=2.0, connect_timeout=2.0,
                      retry=RetryPolicy(max_retries=1, budget=5.0), sleep=lambda s: None)


def assert_valid(resp: Any) -> None:
    """An InferenceResponse whose fields have the types it promises."""
    assert isinstance(resp, InferenceResponse)
    assert isinstance(resp.text, str)
    assert resp.reasoning is None or isinstance(resp.reasoning, str)
    assert resp.finish_reason is None or isinstance(resp.finish_reason, str)
    assert resp.model is None or isinstance(resp.model, str)
    for call in resp.tool_calls:
        assert isinstance(call, ToolCall)
        assert isinstance(call.name, str) and call.name and isinstance(call.args, dict)
    assert all(isinstance(bad, InvalidToolCall) for bad in resp.invalid_tool_calls)
    if resp.usage is not None:
        assert isinstance(resp.usage, Usage)
        assert all(isinstance(n, int) and n >= 0 for n in (
            resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens))
    resp.to_dict()


def _request(with_tools: bool) -> InferenceRequest:
    return InferenceRequest(user_prompt="What is the weather in Paris?",
                            tools=[WEATHER] if with_tools else [])


@given(status=statuses, extra=headers, body=completion_bodies(), with_tools=st.booleans())
def test_infer_returns_a_valid_reply_or_raises_a_pedrollm_error(
    canned: CannedServer, status: int, extra: list[tuple[str, str]], body: bytes,
    with_tools: bool,
) -> None:
    canned.set_reply(status, [("Content-Type", "application/json"), *extra], body)
    client = _client(canned.url, with_tools)
    try:
        assert_valid(client.infer(_request(with_tools)))
    except errors.PedroLLMError:
        pass
    finally:
        client.close()


@given(status=statuses, extra=headers, body=stream_bodies(), with_tools=st.booleans(),
       content_type=st.sampled_from(["text/event-stream", "text/event-stream; charset=utf-8",
                                     "application/x-ndjson", "text/plain"]))
def test_stream_yields_valid_deltas_or_raises_a_pedrollm_error(
    canned: CannedServer, status: int, extra: list[tuple[str, str]], body: bytes,
    with_tools: bool, content_type: str,
) -> None:
    canned.set_reply(status, [("Content-Type", content_type), *extra], body)
    client = _client(canned.url, with_tools)
    deltas: list[StreamDelta] = []
    try:
        for d in client.stream(_request(with_tools)):
            deltas.append(d)
    except errors.StreamInterrupted as exc:
        assert_valid(exc.partial)
    except errors.PedroLLMError:
        pass
    else:
        assert deltas and all(isinstance(d, StreamDelta) for d in deltas)
        assert [d.done for d in deltas] == [False] * (len(deltas) - 1) + [True]
        assert_valid(deltas[-1].response)
    finally:
        client.close()


DEEP = ("[" * 100_000 + "]" * 100_000).encode()


@pytest.mark.parametrize(("status", "content_type", "call", "body"), [
    (200, "application/json", "infer", DEEP),
    (500, "application/json", "infer", DEEP),
    (200, "text/event-stream", "stream", b"data: " + DEEP + b"\n\ndata: [DONE]\n\n"),
], ids=["infer-body", "error-body", "stream-event"])
def test_deeply_nested_json_is_a_pedrollm_error(
        canned: CannedServer, status: int, content_type: str, call: str, body: bytes) -> None:
    canned.set_reply(status, [("Content-Type", content_type)], body)
    client = _client(canned.url, False)
    try:
        with pytest.raises(errors.PedroLLMError):
            if call == "infer":
                client.infer(_request(False))
            else:
                list(client.stream(_request(False)))
    finally:
        client.close()
