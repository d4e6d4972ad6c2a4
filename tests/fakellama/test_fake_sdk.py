"""The SDK's infer and stream against the fake: the weather demo, end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakellama.server import FakeServer
from pedrollm.client import RetryPolicy
from tests.transport import backend_at

types = pytest.importorskip("pedrollm.types")
errors = pytest.importorskip("pedrollm.errors")

WEATHER = types.ToolDefinition(
    name="get_weather", description="Get the current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]})
ASK = "What is the weather in Paris?"


pytestmark = pytest.mark.fake_llama(strict=True)


def _client(url: str, **kw: Any) -> Any:
    return backend_at(url, retry=RetryPolicy(max_retries=0), **kw)


def test_infer_gets_the_tool_call_then_the_answer(fake_llama_server: FakeServer) -> None:
    client = _client(fake_llama_server.url)
    first = client.infer(types.InferenceRequest(user_prompt=ASK, tools=[WEATHER]))
    assert [(c.name, c.args) for c in first.tool_calls] == [("get_weather", {"city": "Paris"})]
    call = first.tool_calls[0]
    follow_up = types.InferenceRequest(tools=[WEATHER], messages=[
        types.Message.user(ASK),
        types.Message.assistant(None, [call]),
        types.Message.tool(call.id, json.dumps({"temperature_c": 22, "conditions": "sunny"})),
    ])
    answer = client.infer(follow_up)
    assert "Paris" in answer.text and not answer.tool_calls
    assert answer.finish_reason == "stop"


def test_stream_assembles_the_same_tool_call(fake_llama_server: FakeServer) -> None:
    client = _client(fake_llama_server.url)
    deltas = list(client.stream(types.InferenceRequest(user_prompt=ASK, tools=[WEATHER])))
    final = deltas[-1].response
    assert final is not None
    assert [(c.name, c.args) for c in final.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert final.usage is not None and final.usage.total_tokens > 0


def test_context_overflow_reaches_the_sdk_as_context_overflow() -> None:
    with FakeServer(ctx_size=32) as server:
        with pytest.raises(errors.ContextOverflow) as caught:
            _client(server.url).infer(types.InferenceRequest(user_prompt=ASK, tools=[WEATHER]))
    assert caught.value.n_ctx == 32


def test_api_key_is_enforced_for_the_sdk() -> None:
    with FakeServer(api_key="k") as server:
        with pytest.raises(errors.AuthenticationError):
            _client(server.url).infer(types.InferenceRequest(user_prompt=ASK, tools=[WEATHER]))
        reply = _client(server.url, api_key="k").infer(
            types.InferenceRequest(user_prompt=ASK, tools=[WEATHER]))
    assert reply.tool_calls


def test_mid_stream_cut_is_stream_interrupted() -> None:
    with FakeServer(faults="disconnect_after=2") as server:
        with pytest.raises(errors.StreamInterrupted):
            list(_client(server.url).stream(types.InferenceRequest(user_prompt=ASK,
                                                                   tools=[WEATHER])))
