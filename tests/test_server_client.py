"""The generic backend over a local stand-in server: replies, tool calls, retries, timeouts."""

from __future__ import annotations

import json
import time

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pedrollm.backends.openai import OpenAIBackend
from pedrollm.client import RetryPolicy
from pedrollm.errors import (
    ConnectionFailed,
    InvalidResponse,
    ModelLoading,
    RateLimited,
    ReadTimeout,
)
from pedrollm.types import InferenceRequest, Message, ToolCall, ToolDefinition

from .sse import completion, tool_call
from .transport import backend_at

CHAT = "/v1/chat/completions"
LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]},
)


class Sleeps:
    """Records the waits the client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(server: HTTPServer, **kwargs: object) -> OpenAIBackend:
    return backend_at(server.url_for("/"), **kwargs)


def test_infer_returns_text_usage_and_complete(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT, method="POST").respond_with_json(
        completion("Paris is the capital.", timings={"predicted_n": 3, "predicted_ms": 1.5})
    )
    resp = client(httpserver).infer(InferenceRequest(user_prompt="Capital of France?"))
    assert resp.text == "Paris is the capital."
    assert resp.finish_reason == "stop"
    assert resp.next_action == "COMPLETE"
    assert resp.usage is not None and resp.usage.total_tokens == 13
    assert resp.timings is not None and resp.timings.predicted_n == 3
    assert resp.model == "test-model"


def test_request_body_carries_messages_tools_and_sampling(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT, method="POST").respond_with_json(completion())
    req = InferenceRequest(
        system_prompt="Be brief.",
        messages=[
            Message.user("Weather?"),
            Message.assistant(None, [ToolCall("call_9", "get_weather", {"city": "Oslo"})]),
            Message.tool("call_9", "rain"),
        ],
        user_prompt="And tomorrow?",
        tools=[WEATHER],
        temperature=0.2,
        max_tokens=64,
        top_k=40,
        stop=["</s>"],
        extra={"cache_prompt": True},
    )
    client(httpserver).infer(req)
    body = json.loads(httpserver.log[0][0].get_data())
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "user"]
    sent_call = body["messages"][2]["tool_calls"][0]
    assert sent_call["id"] == "call_9"
    assert json.loads(sent_call["function"]["arguments"]) == {"city": "Oslo"}
    assert body["messages"][3]["tool_call_id"] == "call_9"
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["temperature"] == 0.2 and body["max_tokens"] == 64 and body["top_k"] == 40
    assert body["stop"] == ["</s>"] and body["cache_prompt"] is True
    assert "stream" not in body


@pytest.mark.parametrize("arguments", ['{"city": "Paris"}', {"city": "Paris"}])
def test_native_tool_call_arguments_as_string_or_object(
    httpserver: HTTPServer, arguments: object
) -> None:
    httpserver.expect_request(CHAT).respond_with_json(
        completion(None, tool_calls=[tool_call("get_weather", arguments)],
                   finish_reason="tool_calls"))
    resp = client(httpserver).infer(InferenceRequest(user_prompt="Weather?", tools=[WEATHER]))
    assert resp.tool_calls == [ToolCall("call_1", "get_weather", {"city": "Paris"})]
    assert resp.next_action == "CONTINUE"
    assert resp.invalid_tool_calls == []


def test_malformed_tool_arguments_are_kept_as_invalid(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion(None, tool_calls=[
        tool_call("get_weather", '{"city": "Par', "call_a"),
        tool_call("get_weather", '["not", "an", "object"]', "call_b"),
        tool_call("get_weather", '{"city": "Rome"}', "call_c"),
    ], finish_reason="tool_calls"))
    resp = client(httpserver).infer(InferenceRequest(user_prompt="Weather?", tools=[WEATHER]))
    assert [c.args for c in resp.tool_calls] == [{"city": "Rome"}]
    assert [(i.id, i.raw) for i in resp.invalid_tool_calls] == [
        ("call_a", '{"city": "Par'), ("call_b", '["not", "an", "object"]')]
    assert "not valid JSON" in resp.invalid_tool_calls[0].error
    assert "must be a JSON object" in resp.invalid_tool_calls[1].error


def test_reasoning_content_and_think_tags_go_to_reasoning(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(CHAT).respond_with_json(
        completion("42", reasoning="6 times 7"))
    httpserver.expect_oneshot_request(CHAT).respond_with_json(
        completion("<think>6 times 7</think>\n42"))
    c = client(httpserver)
    first = c.infer(InferenceRequest(user_prompt="?"))
    second = c.infer(InferenceRequest(user_prompt="?"))
    assert (first.text, first.reasoning) == ("42", "6 times 7")
    assert (second.text, second.reasoning) == ("42", "6 times 7")


def test_non_json_and_choiceless_replies_are_invalid_response(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(CHAT).respond_with_data("<html>oops</html>")
    httpserver.expect_oneshot_request(CHAT).respond_with_json({"id": "x", "choices": []})
    c = client(httpserver)
    with pytest.raises(InvalidResponse, match="not JSON"):
        c.infer(InferenceRequest(user_prompt="?"))
    with pytest.raises(InvalidResponse, match="no choices"):
        c.infer(InferenceRequest(user_prompt="?"))


def test_503_loading_then_200_is_retried_to_success(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(CHAT).respond_with_json(LOADING, status=503)
    httpserver.expect_oneshot_request(CHAT).respond_with_json(LOADING, status=503)
    httpserver.expect_request(CHAT).respond_with_json(completion("ready now"))
    sleeps = Sleeps()
    resp = client(httpserver, sleep=sleeps).infer(InferenceRequest(user_prompt="hi"))
    assert resp.text == "ready now"
    assert len(sleeps.calls) == 2
    assert sleeps.calls[1] >= sleeps.calls[0] * 0.5  # backoff grows (with jitter)


def test_503_past_the_retry_budget_raises_model_loading(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(LOADING, status=503)
    sleeps = Sleeps()
    c = client(httpserver, sleep=sleeps, retry=RetryPolicy(max_retries=2, budget=60))
    with pytest.raises(ModelLoading, match="Loading model"):
        c.infer(InferenceRequest(user_prompt="hi"))
    assert len(sleeps.calls) == 2
    assert len(httpserver.log) == 3


def test_retry_after_is_honoured_on_429(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(CHAT).respond_with_json(
        {"error": {"code": 429, "message": "slow down", "type": "rate_limit_error"}},
        status=429, headers={"Retry-After": "2"})
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    sleeps = Sleeps()
    resp = client(httpserver, sleep=sleeps).infer(InferenceRequest(user_prompt="hi"))
    assert resp.text == "ok"
    assert sleeps.calls == [2.0]


def test_retry_after_beyond_budget_raises_rate_limited(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(
        {"error": {"code": 429, "message": "slow down", "type": "rate_limit_error"}},
        status=429, headers={"Retry-After": "120"})
    sleeps = Sleeps()
    with pytest.raises(RateLimited) as info:
        client(httpserver, sleep=sleeps, retry=RetryPolicy(budget=10)).infer(
            InferenceRequest(user_prompt="hi"))
    assert info.value.retry_after == 120.0
    assert sleeps.calls == []


def test_connection_refused_is_retried_then_raises_connection_failed() -> None:
    sleeps = Sleeps()
    c = backend_at("http://127.0.0.1:9", sleep=sleeps, retry=RetryPolicy(max_retries=2))
    with pytest.raises(ConnectionFailed, match="127.0.0.1:9"):
        c.infer(InferenceRequest(user_prompt="hi"))
    assert len(sleeps.calls) == 2


def test_read_timeout_raised_within_its_bound_and_not_resubmitted(
    httpserver: HTTPServer,
) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response(json.dumps(completion()), content_type="application/json")

    httpserver.expect_request(CHAT).respond_with_handler(slow)
    sleeps = Sleeps()
    c = client(httpserver, read_timeout=0.3, sleep=sleeps)
    started = time.monotonic()
    with pytest.raises(ReadTimeout, match="read timeout"):
        c.infer(InferenceRequest(user_prompt="hi"))
    # The bound is the read timeout, not the server's 1.5 s.
    assert time.monotonic() - started < 1.4
    assert sleeps.calls == []
    assert len(httpserver.log) <= 1


def test_api_key_sent_as_bearer_and_kept_out_of_repr_and_errors(httpserver: HTTPServer) -> None:
    secret = "sk-very-secret-123"
    httpserver.expect_request(CHAT, headers={"Authorization": f"Bearer {secret}"}
                              ).respond_with_json(
        {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}},
        status=401)
    c = client(httpserver, api_key=secret)
    assert secret not in repr(c)
    with pytest.raises(Exception) as info:
        c.infer(InferenceRequest(user_prompt="hi"))
    assert type(info.value).__name__ == "AuthenticationError"
    assert secret not in str(info.value) and secret not in repr(info.value)


def test_a_callers_session_changed_after_the_first_call_is_honoured(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    session = requests.Session()
    c = backend_at(httpserver.url_for("/"), session=session)
    c.infer(InferenceRequest(user_prompt="hi"))
    session.headers["X-Trace"] = "42"
    session.auth = ("user", "pass")
    c.infer(InferenceRequest(user_prompt="hi again"))
    sent = [r.headers for r, _ in httpserver.log]
    assert "X-Trace" not in sent[0] and "Authorization" not in sent[0]
    assert sent[1]["X-Trace"] == "42" and sent[1]["Authorization"].startswith("Basic ")
    assert json.loads(httpserver.log[1][0].get_data())["messages"][0]["content"] == "hi again"
