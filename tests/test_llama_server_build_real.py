"""A real llama-server with the scripted model: native tool calls, the answer, text fallback.

Marked ``real_server``: they need ``python -m contracts.servers.build`` to have run
(or ``$PEDROLLM_LLAMA_SERVER``); without a binary they skip, and with
``PEDROLLM_REQUIRE_REAL_SERVER=1`` they build it instead. Deselect with
``-m "not real_server"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from contracts.servers.llama_server import LlamaServer
from contracts.servers.record_fixtures import WEATHER_TOOL
from contracts.servers.scripted_model import ANSWER, TOOL_ARGUMENTS, tool_call_text

pytestmark = pytest.mark.real_server
pytest_plugins = ["contracts.servers.pytest_fixtures"]

ASK: dict[str, Any] = {"role": "user", "content": "What is the weather in Paris?"}
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps(TOOL_ARGUMENTS)}}
AFTER_TOOL: list[dict[str, Any]] = [
    ASK,
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1",
     "content": json.dumps({"temperature_c": 22, "conditions": "sunny"})},
]


def _chat(server: LlamaServer, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """POST /v1/chat/completions (non-streaming) and return the first choice."""
    response = requests.post(server.url + "/v1/chat/completions",
                             json={"messages": messages, **extra}, timeout=60)
    assert response.status_code == 200, response.text
    choice: dict[str, Any] = response.json()["choices"][0]
    return choice


def _stream(server: LlamaServer, messages: list[dict[str, Any]], **extra: Any
            ) -> tuple[str, list[dict[str, str]], str | None, int]:
    """Stream a chat; return (content, assembled tool calls, finish reason, tool deltas)."""
    body = {"messages": messages, "stream": True, **extra}
    content, finish, tool_deltas = "", None, 0
    calls: list[dict[str, str]] = []
    with requests.post(server.url + "/v1/chat/completions", json=body, stream=True,
                       timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: "):])
            if not chunk.get("choices"):
                continue
            choice = chunk["choices"][0]
            delta = choice.get("delta", {})
            content += delta.get("content") or ""
            for part in delta.get("tool_calls") or []:
                tool_deltas += 1
                while len(calls) <= part.get("index", 0):
                    calls.append({"name": "", "arguments": ""})
                target = calls[part.get("index", 0)]
                function = part.get("function", {})
                target["name"] += function.get("name") or ""
                target["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return content, calls, finish, tool_deltas


@pytest.fixture(scope="module")
def plain_llama_server(start_llama_server: Callable[..., LlamaServer]) -> LlamaServer:
    """The same model without --jinja (llama-server's built-in ChatML handling)."""
    return start_llama_server(jinja=False)


def test_health_answers_ok(real_llama_server: LlamaServer) -> None:
    response = requests.get(real_llama_server.url + "/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_tools_offered_gives_a_native_tool_call(real_llama_server: LlamaServer
                                                ) -> None:
    choice = _chat(real_llama_server, [ASK], tools=[WEATHER_TOOL])
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert not choice["message"].get("content")


def test_tools_offered_streams_tool_call_deltas(real_llama_server: LlamaServer
                                                ) -> None:
    content, calls, finish, deltas = _stream(real_llama_server, [ASK], tools=[WEATHER_TOOL])
    assert finish == "tool_calls"
    assert [c["name"] for c in calls] == ["get_weather"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert deltas >= 2 and not content


def test_after_the_tool_result_the_answer_is_plain_text(real_llama_server: LlamaServer
                                                        ) -> None:
    choice = _chat(real_llama_server, AFTER_TOOL, tools=[WEATHER_TOOL])
    assert choice["message"]["content"] == ANSWER == "It is sunny in Paris."
    assert not choice["message"].get("tool_calls")
    assert choice["finish_reason"] == "stop"


def test_after_the_tool_result_the_answer_streams(real_llama_server: LlamaServer
                                                  ) -> None:
    content, calls, finish, _ = _stream(real_llama_server, AFTER_TOOL, tools=[WEATHER_TOOL])
    assert (content, calls, finish) == (ANSWER, [], "stop")


def test_without_tools_the_call_arrives_as_text(real_llama_server: LlamaServer
                                                ) -> None:
    choice = _chat(real_llama_server, [ASK])
    assert choice["message"]["content"] == tool_call_text()
    assert not choice["message"].get("tool_calls")


def test_without_jinja_the_call_arrives_as_text(plain_llama_server: LlamaServer) -> None:
    choice = _chat(plain_llama_server, [ASK])
    assert choice["message"]["content"].strip() == tool_call_text()


def test_the_script_holds_at_a_high_temperature(real_llama_server: LlamaServer
                                                ) -> None:
    choice = _chat(real_llama_server, AFTER_TOOL, tools=[WEATHER_TOOL], temperature=2.0,
                   seed=7)
    assert choice["message"]["content"] == ANSWER


@pytest.mark.parametrize(("messages", "ending"), [([ASK], "assistant\n"),
                                                   (AFTER_TOOL, "assistant\n\n")])
def test_the_generation_prompt_ends_differently_after_a_tool_result(
        real_llama_server: LlamaServer, messages: list[dict[str, Any]],
        ending: str) -> None:
    response = requests.post(real_llama_server.url + "/apply-template",
                             json={"messages": messages, "tools": [WEATHER_TOOL]}, timeout=30)
    prompt = response.json()["prompt"]
    assert prompt.endswith("<|im_start|>" + ending)
    assert "<tools>" in prompt and '"name": "get_weather"' in prompt
