"""The tool registry and the agent loop, against local stand-in servers with scripted replies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pedrollm.agent import (
    Agent,
    AgentEvent,
    AgentResult,
    Tool,
    ToolRegistry,
    estimate_tokens,
    trim_conversation,
)
from pedrollm.backends.llamacpp import LlamaCppBackend
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.errors import ConfigError, HTTPError
from pedrollm.tool_schema import ToolSchemaError
from pedrollm.types import Message, ToolCall

from .sse import chunk, completion, sse, tool_call

CHAT = "/v1/chat/completions"


@dataclass
class Report:
    city: str
    celsius: float


def weather_tools(calls: list[dict[str, Any]] | None = None) -> ToolRegistry:
    """A registry with get_weather (recording its calls) and a tool that always raises."""
    registry = ToolRegistry()
    seen = calls if calls is not None else []

    @registry.register
    def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
        """Current weather for a city.

        Args:
            city: The city name.
            unit: "celsius" or "fahrenheit".
        """
        seen.append({"city": city, "unit": unit})
        return {"city": city, "temperature": 21, "unit": unit}

    @registry.register(name="broken_tool", description="Always fails.")
    def explode(reason: str) -> str:
        raise RuntimeError(f"sensor offline: {reason}")

    return registry


def scripted(server: HTTPServer, *bodies: dict[str, Any] | str) -> None:
    """Answer successive chat requests with ``bodies`` in order (the last one repeats).

    A str body is sent as an SSE stream.
    """
    replies = list(bodies)
    state = {"n": 0}

    def handler(request: Request) -> Response:
        body = replies[min(state["n"], len(replies) - 1)]
        state["n"] += 1
        if isinstance(body, str):
            return Response(body, content_type="text/event-stream")
        return Response(json.dumps(body), content_type="application/json")

    server.expect_request(CHAT, method="POST").respond_with_handler(handler)


def sent(server: HTTPServer) -> list[dict[str, Any]]:
    """The chat request bodies the agent sent, in order."""
    return [json.loads(req.get_data()) for req, _ in server.log if req.path == CHAT]


def backend(server: HTTPServer, **kwargs: Any) -> OpenAIBackend:
    options: dict[str, Any] = {"context_size": 8192, "max_retries": 0}
    options.update(kwargs)
    return OpenAIBackend(server.url_for("/"), **options)


def weather_call(args: Any, call_id: str = "call_1", name: str = "get_weather") -> dict[str, Any]:
    return completion(None, tool_calls=[tool_call(name, args, call_id)],
                      finish_reason="tool_calls")


# -- registry -------------------------------------------------------------------------


def test_registry_builds_definitions_from_decorated_functions() -> None:
    registry = weather_tools()
    defs = {d.name: d for d in registry.definitions()}
    assert len(registry) == 2 and "get_weather" in registry and "explode" not in registry
    assert defs["get_weather"].description == "Current weather for a city."
    assert defs["get_weather"].parameters["properties"]["city"] == {
        "type": "string", "description": "The city name."}
    assert defs["get_weather"].parameters["required"] == ["city"]
    assert defs["broken_tool"].description == "Always fails."
    assert defs["get_weather"].to_openai()["function"]["name"] == "get_weather"


def test_decorated_function_is_still_callable() -> None:
    registry = ToolRegistry()

    @registry.register
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    assert add(2, 3) == 5
    tool = registry.get("add")
    assert tool is not None and tool.invoke({"a": 2, "b": 3}) == 5


def test_registering_a_name_twice_is_refused() -> None:
    registry = weather_tools()
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Tool("get_weather", "again", {"type": "object"}, lambda: None))


def test_tool_name_must_be_acceptable_to_servers() -> None:
    with pytest.raises(ValueError, match="tool name 'get weather'"):
        Tool("get weather", "", {"type": "object"}, lambda: None)


def test_registering_a_function_with_kwargs_names_it() -> None:
    registry = ToolRegistry()

    def loose(**options: Any) -> None:
        """Loose."""

    with pytest.raises(ToolSchemaError, match="loose"):
        registry.register(loose)


# -- the loop, native tool calls -----------------------------------------------------


def test_tool_call_then_result_then_final_answer(httpserver: HTTPServer) -> None:
    scripted(httpserver,
             weather_call('{"city": "Paris"}'),
             completion("It is 21 degrees in Paris."))
    events: list[AgentEvent] = []
    calls: list[dict[str, Any]] = []
    agent = Agent(backend(httpserver), weather_tools(calls), "You are a weather bot.",
                  on_event=events.append)

    result = agent.run("What's the weather in Paris?")

    assert result.final_text == "It is 21 degrees in Paris."
    assert result.stopped_reason == "complete" and result.completed
    assert result.turns == 2
    assert calls == [{"city": "Paris", "unit": "celsius"}]
    first, second = sent(httpserver)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "broken_tool"]
    assert first["messages"] == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What's the weather in Paris?"},
    ]
    assistant, tool_msg = second["messages"][2:]
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_1"
    assert json.loads(tool_msg["content"]) == {"city": "Paris", "temperature": 21,
                                               "unit": "celsius"}
    assert [e.kind for e in events] == ["request", "tool_call", "tool_result", "request",
                                        "final"]
    assert events[1].data == {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}
    assert events[2].data["ok"] is True


def test_transcript_serialises_to_json_and_back(httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call({"city": "Oslo"}), completion("Cold."))
    result = Agent(backend(httpserver), weather_tools()).run("Weather in Oslo?")

    data = json.loads(result.to_json())
    assert data["final_text"] == "Cold." and data["stopped_reason"] == "complete"
    roles = [e["message"]["role"] for e in data["transcript"] if "message" in e]
    assert roles == ["user", "assistant", "tool", "assistant"]
    again = AgentResult.from_json(result.to_json())
    assert again.messages == result.messages
    assert again.events == result.events


def test_no_system_prompt_sends_only_the_task(httpserver: HTTPServer) -> None:
    scripted(httpserver, completion("Hi."))
    result = Agent(backend(httpserver), ToolRegistry()).run("Say hi")
    assert result.final_text == "Hi."
    (body,) = sent(httpserver)
    assert body["messages"] == [{"role": "user", "content": "Say hi"}]
    assert "tools" not in body


def test_non_string_results_are_json_encoded(httpserver: HTTPServer) -> None:
    registry = ToolRegistry()

    @registry.register
    def report(city: str) -> Report:
        """Report."""
        return Report(city, 3.5)

    scripted(httpserver, weather_call({"city": "Oslo"}, name="report"), completion("Done."))
    Agent(backend(httpserver), registry).run("Report Oslo")
    tool_msg = sent(httpserver)[1]["messages"][-1]
    assert json.loads(tool_msg["content"]) == {"city": "Oslo", "celsius": 3.5}


def test_several_calls_in_one_reply_each_get_a_result(httpserver: HTTPServer) -> None:
    two = completion(None, tool_calls=[tool_call("get_weather", {"city": "Oslo"}, "a"),
                                       tool_call("get_weather", {"city": "Rome"}, "b")])
    scripted(httpserver, two, completion("Both done."))
    calls: list[dict[str, Any]] = []
    Agent(backend(httpserver), weather_tools(calls)).run("Oslo and Rome?")
    results = sent(httpserver)[1]["messages"][2:]
    assert [(m["role"], m.get("tool_call_id")) for m in results] == [
        ("tool", "a"), ("tool", "b")]
    assert [c["city"] for c in calls] == ["Oslo", "Rome"]


# -- errors fed back to the model ----------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    ({}, "'city' is required"),
    ({"city": 42}, "'city' must be string, got integer 42"),
    ({"city": "Oslo", "country": "NO"}, "'country' is not an accepted argument"),
])
def test_invalid_arguments_are_sent_back_and_the_tool_is_not_run(
        httpserver: HTTPServer, args: dict[str, Any], expected: str) -> None:
    scripted(httpserver, weather_call(args), completion("Sorry."))
    calls: list[dict[str, Any]] = []
    events: list[AgentEvent] = []
    result = Agent(backend(httpserver), weather_tools(calls), on_event=events.append).run("?")

    assert result.final_text == "Sorry."
    assert calls == []
    tool_msg = sent(httpserver)[1]["messages"][-1]
    assert tool_msg["tool_call_id"] == "call_1"
    assert tool_msg["content"].startswith("Error: invalid arguments for get_weather: ")
    assert expected in tool_msg["content"]
    assert [e.data["ok"] for e in events if e.kind == "tool_result"] == [False]


def test_raising_tool_sends_its_error_back(httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call({"reason": "rain"}, name="broken_tool"),
             completion("The sensor is down."))
    result = Agent(backend(httpserver), weather_tools()).run("?")
    assert result.final_text == "The sensor is down."
    tool_msg = sent(httpserver)[1]["messages"][-1]
    assert tool_msg["content"] == (
        "Error: broken_tool raised RuntimeError: sensor offline: rain"
    )


def test_unknown_tool_is_answered_with_the_available_names(httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call({}, name="get_time"), completion("OK."))
    Agent(backend(httpserver), weather_tools()).run("?")
    tool_msg = sent(httpserver)[1]["messages"][-1]
    assert tool_msg["content"] == (
        "Error: unknown tool 'get_time'; available tools: get_weather, broken_tool"
    )


def test_undecodable_arguments_are_sent_back_for_the_same_call_id(
        httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call('{"city": "Par', call_id="call_7"),
             completion("Let me retry."))
    result = Agent(backend(httpserver), weather_tools()).run("?")
    assert result.final_text == "Let me retry."
    assistant, tool_msg = sent(httpserver)[1]["messages"][1:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_7"]
    assert tool_msg["tool_call_id"] == "call_7"
    assert tool_msg["content"].startswith("Error: the tool call could not be read")
    assert '{"city": "Par' in tool_msg["content"]


def test_backend_error_is_reported_as_an_event_and_raised(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT, method="POST").respond_with_json(
        {"error": {"code": 500, "message": "boom", "type": "server_error"}}, status=500)
    events: list[AgentEvent] = []
    with pytest.raises(HTTPError):
        Agent(backend(httpserver), weather_tools(), on_event=events.append).run("?")
    assert [e.kind for e in events] == ["request", "error"]
    assert "boom" in events[-1].data["error"]


# -- max_turns -----------------------------------------------------------------------


def test_max_turns_stops_with_a_clear_result(httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call({"city": "Oslo"}))
    calls: list[dict[str, Any]] = []
    events: list[AgentEvent] = []
    result = Agent(backend(httpserver), weather_tools(calls), max_turns=3,
                   on_event=events.append).run("Loop forever")

    assert result.stopped_reason == "max_turns" and not result.completed
    assert result.turns == 3
    assert len(sent(httpserver)) == 3
    assert len(calls) == 2  # the third reply's call is never run: nobody would read it
    last = events[-1]
    assert last.kind == "max_turns"
    assert "stopped after 3 turns" in last.data["message"]
    assert last.data["unanswered_calls"] == [
        {"id": "call_1", "name": "get_weather", "args": {"city": "Oslo"}}]


def test_max_turns_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_turns"):
        Agent(OpenAIBackend("http://127.0.0.1:9"), ToolRegistry(), max_turns=0)


# -- caps: calls per turn, tool output size, repeated calls, ids ---------------------


def test_a_reply_with_thousands_of_calls_runs_only_max_calls_per_turn(
        httpserver: HTTPServer) -> None:
    flood = completion(None, tool_calls=[tool_call("get_weather", {"city": f"c{i}"}, f"id{i}")
                                         for i in range(5000)])
    scripted(httpserver, flood, flood, completion("Done."))
    calls: list[dict[str, Any]] = []
    events: list[AgentEvent] = []
    result = Agent(backend(httpserver), weather_tools(calls),
                   on_event=events.append).run("Everywhere?")

    assert result.stopped_reason == "complete"
    assert len(calls) == 64  # 32 per turn, two flooded turns; not 10,000
    second = sent(httpserver)[1]["messages"]
    assistant, results = second[1], second[2:]
    # Only the calls that were run stay in the conversation, each with its result.
    assert len(assistant["tool_calls"]) == 32 and len(results) == 32
    assert results[-1]["content"].endswith(
        "[4968 more tool calls in this reply were not run: at most 32 calls are run per turn]")
    dropped = [e for e in events if e.kind == "calls_dropped"]
    assert len(dropped) == 2 and len(dropped[0].data["dropped"]) == 4968


def test_max_calls_per_turn_is_configurable(httpserver: HTTPServer) -> None:
    three = completion(None, tool_calls=[tool_call("get_weather", {"city": c}, c)
                                         for c in ("Oslo", "Rome", "Lima")])
    scripted(httpserver, three, completion("Done."))
    calls: list[dict[str, Any]] = []
    Agent(backend(httpserver), weather_tools(calls), max_calls_per_turn=2).run("?")
    assert [c["city"] for c in calls] == ["Oslo", "Rome"]


def test_a_huge_tool_output_is_truncated_and_marked_for_the_model(
        httpserver: HTTPServer) -> None:
    registry = ToolRegistry()

    @registry.register
    def read_log() -> str:
        """The whole log."""
        return "x" * 5_000_000

    scripted(httpserver, weather_call({}, name="read_log"), completion("Too long."))
    events: list[AgentEvent] = []
    Agent(backend(httpserver), registry, on_event=events.append).run("Read it")
    content = sent(httpserver)[1]["messages"][-1]["content"]
    assert content.startswith("x" * 32_000)
    assert content[32_000:] == ("\n[truncated: the output was 5,000,000 characters; "
                                "only the first 32,000 are shown]")
    assert [e.data["content"] for e in events if e.kind == "tool_result"] == [content]


def test_max_tool_output_chars_is_configurable(httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call({"city": "Oslo"}), completion("OK."))
    Agent(backend(httpserver), weather_tools(), max_tool_output_chars=10).run("?")
    content = sent(httpserver)[1]["messages"][-1]["content"]
    assert content.startswith('{"city": "\n[truncated: the output was ')


def test_a_broken_call_sharing_an_id_does_not_refuse_the_valid_one(
        httpserver: HTTPServer) -> None:
    both = completion(None, tool_calls=[tool_call("get_weather", {"city": "Oslo"}, "dup"),
                                        tool_call("get_weather", '{"city": "Ro', "dup")])
    scripted(httpserver, both, completion("Done."))
    calls: list[dict[str, Any]] = []
    events: list[AgentEvent] = []
    Agent(backend(httpserver), weather_tools(calls), on_event=events.append).run("?")

    assert calls == [{"city": "Oslo", "unit": "celsius"}]
    assistant, first, second = sent(httpserver)[1]["messages"][1:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["dup", "dup_2"]
    assert (first["tool_call_id"], second["tool_call_id"]) == ("dup", "dup_2")
    assert '"temperature": 21' in first["content"]
    assert second["content"].startswith("Error: the tool call could not be read")
    assert [e.data["ok"] for e in events if e.kind == "tool_result"] == [True, False]


def test_calls_without_ids_or_with_one_id_each_get_their_own(httpserver: HTTPServer) -> None:
    calls_sent = [tool_call("get_weather", {"city": "Oslo"}, "same"),
                  tool_call("get_weather", {"city": "Rome"}, "same"),
                  tool_call("get_weather", {"city": "Lima"}, "")]
    scripted(httpserver, completion(None, tool_calls=calls_sent), completion("Done."))
    Agent(backend(httpserver), weather_tools()).run("?")
    results = sent(httpserver)[1]["messages"][2:]
    ids = [m["tool_call_id"] for m in results]
    assert len(set(ids)) == 3 and ids[:2] == ["same", "same_2"]


def test_a_model_repeating_the_same_call_is_stopped_with_a_clear_reason(
        httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call({"city": "Paris"}))
    calls: list[dict[str, Any]] = []
    events: list[AgentEvent] = []
    result = Agent(backend(httpserver), weather_tools(calls),
                   on_event=events.append).run("Weather in Paris?")

    assert result.stopped_reason == "repeated_call" and not result.completed
    assert result.turns == 3 and len(sent(httpserver)) == 3
    assert len(calls) == 2  # run twice; the third identical request is not run
    last = events[-1]
    assert last.kind == "repeated_call"
    assert last.data["call"] == {"id": "call_1", "name": "get_weather",
                                 "args": {"city": "Paris"}}
    assert 'get_weather({"city": "Paris"}) again after it had run 2 times' in \
        last.data["message"]


def test_the_same_tool_with_other_arguments_is_not_a_repeat(httpserver: HTTPServer) -> None:
    scripted(httpserver, *[weather_call({"city": c}) for c in ("A", "B", "C", "D")],
             completion("Done."))
    result = Agent(backend(httpserver), weather_tools()).run("?")
    assert result.stopped_reason == "complete" and result.turns == 5


def test_max_identical_calls_none_lets_a_repeating_model_run_to_max_turns(
        httpserver: HTTPServer) -> None:
    scripted(httpserver, weather_call({"city": "Paris"}))
    calls: list[dict[str, Any]] = []
    result = Agent(backend(httpserver), weather_tools(calls), max_turns=5,
                   max_identical_calls=None).run("?")
    assert result.stopped_reason == "max_turns" and len(calls) == 4


@pytest.mark.parametrize("cap", ["max_calls_per_turn", "max_tool_output_chars",
                                 "max_identical_calls"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_caps_must_be_positive_integers(cap: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{cap} must be an integer of at least 1"):
        Agent(OpenAIBackend("http://127.0.0.1:9"), ToolRegistry(), **{cap: value})


# -- tools described in text (no native tool calls) ----------------------------------


def test_without_native_tools_the_prompt_describes_them_and_calls_are_read_from_text(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request("/props").respond_with_json(
        {"default_generation_settings": {"n_ctx": 4096}})
    call_text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n</tool_call>'
    scripted(httpserver, completion(call_text), completion("Warm in Lima."))
    calls: list[dict[str, Any]] = []
    llama = LlamaCppBackend(httpserver.url_for("/"), max_retries=0, native_tools=False)

    result = Agent(llama, weather_tools(calls), "Be brief.").run("Lima?")

    assert result.final_text == "Warm in Lima."
    assert calls == [{"city": "Lima", "unit": "celsius"}]
    first, second = sent(httpserver)
    system = first["messages"][0]["content"]
    assert system.startswith("Be brief.\n\n")
    assert '"name": "get_weather"' in system
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "text"}}' in system
    assert "tools" not in first and "tools" not in second  # refused without --jinja
    assistant, tool_msg = second["messages"][2:]
    assert "tool_calls" not in assistant
    assert '"city": "Lima"' in assistant["content"] and "<tool_call>" in assistant["content"]
    assert tool_msg["role"] == "tool" and tool_msg["content"].startswith("{")


def test_unknown_text_format_is_refused_when_the_backend_is_built() -> None:
    with pytest.raises(ConfigError, match="unknown tool-call format 'no_such_format'.*hermes"):
        LlamaCppBackend("http://127.0.0.1:9", tool_call_format="no_such_format")


# -- streaming -----------------------------------------------------------------------


def test_stream_mode_reports_text_deltas_and_answers(httpserver: HTTPServer) -> None:
    stream = sse(chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo."}),
                 chunk({}, finish_reason="stop"))
    scripted(httpserver, stream)
    events: list[AgentEvent] = []
    result = Agent(backend(httpserver), ToolRegistry(), stream=True,
                   on_event=events.append).run("Hi")
    assert result.final_text == "Hello."
    assert [e.data["content"] for e in events if e.kind == "delta"] == ["Hel", "lo."]
    assert all(e.kind != "delta" for e in result.events)


# -- context trimming ----------------------------------------------------------------


def test_oldest_turns_are_dropped_to_fit_the_usable_context(httpserver: HTTPServer) -> None:
    registry = ToolRegistry()

    @registry.register
    def read_page(n: int) -> str:
        """Read a page."""
        return f"page {n}: " + "x" * 400  # about 100 tokens per result

    scripted(httpserver,
             weather_call({"n": 1}, "c1", "read_page"),
             weather_call({"n": 2}, "c2", "read_page"),
             weather_call({"n": 3}, "c3", "read_page"),
             completion("Read them all."))
    events: list[AgentEvent] = []
    result = Agent(backend(httpserver, usable_context=330), registry, "Read pages.",
                   on_event=events.append).run("Read three pages")

    assert result.final_text == "Read them all."
    bodies = sent(httpserver)
    last = bodies[-1]["messages"]
    # System prompt and task stay; the newest call and its result stay together.
    assert last[0] == {"role": "system", "content": "Read pages."}
    assert last[1] == {"role": "user", "content": "Read three pages"}
    assert last[-1]["tool_call_id"] == "c3" and last[-2]["tool_calls"][0]["id"] == "c3"
    assert not any(m.get("tool_call_id") == "c1" for m in last)
    for body in bodies:
        for i, msg in enumerate(body["messages"]):
            if msg["role"] == "tool":
                owner = body["messages"][i - 1]
                assert owner.get("tool_call_id") or owner["tool_calls"]
    requests = [e for e in events if e.kind == "request"]
    assert requests[0].data["dropped_messages"] == 0
    assert requests[-1].data["dropped_messages"] >= 2
    assert all(r.data["estimated_tokens"] <= 330 for r in requests)
    # The transcript still holds everything that was said.
    assert sum(1 for m in result.messages if m.role == "tool") == 3


def test_trimming_never_drops_pinned_messages_or_the_latest_turn() -> None:
    pinned = [Message.system("s" * 400), Message.user("task")]
    turns = [Message.assistant(None, [ToolCall("a", "f", {})]), Message.tool("a", "r" * 400)]
    trimmed = trim_conversation(pinned, turns, budget=10)
    assert trimmed.messages == pinned + turns
    assert trimmed.dropped == 0
    assert trimmed.estimated_tokens > 10


def test_trimming_keeps_everything_when_there_is_no_budget() -> None:
    turns = [Message.assistant("x" * 4000), Message.user("y" * 4000), Message.assistant("z")]
    trimmed = trim_conversation([Message.user("task")], turns, budget=None)
    assert len(trimmed.messages) == 4 and trimmed.dropped == 0


def test_custom_token_counter_decides_what_fits() -> None:
    turns = [Message.assistant("old"), Message.user("new question"), Message.assistant("new")]

    def words(text: str) -> int:
        return len(text.split())

    kept = trim_conversation([Message.user("task")], turns, budget=20, count=words).messages
    assert [m.content for m in kept] == ["task", "new question", "new"]
    assert estimate_tokens("abcde") == 2


def test_backend_without_a_known_context_is_not_trimmed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/models").respond_with_json({"data": [{"id": "m"}]})
    scripted(httpserver, completion("Fine."))
    events: list[AgentEvent] = []
    no_window = OpenAIBackend(httpserver.url_for("/"), max_retries=0)
    result = Agent(no_window, ToolRegistry(), on_event=events.append).run("x" * 10_000)
    assert result.final_text == "Fine."
    assert events[0].data["budget"] is None and events[0].data["dropped_messages"] == 0


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    """Turns of a tool conversation: user messages, and assistant calls with their results."""
    out: list[Message] = []
    for turn in range(draw(st.integers(1, 8))):
        text = "x" * draw(st.integers(0, 200))
        if draw(st.booleans()):
            out.append(Message.user(text))
            continue
        ids = [f"c{turn}_{i}" for i in range(draw(st.integers(0, 3)))]
        out.append(Message.assistant(text or None, [ToolCall(i, "f", {}) for i in ids]))
        out.extend(Message.tool(i, "r" * draw(st.integers(0, 300))) for i in ids)
    return out


@given(turns=conversations(), budget=st.none() | st.integers(0, 600))
def test_trimming_keeps_a_valid_suffix_with_pinned_messages_for_any_budget(
        turns: list[Message], budget: int | None) -> None:
    pinned = [Message.system("sys"), Message.user("task")]
    trimmed = trim_conversation(pinned, turns, budget)
    kept = trimmed.messages[2:]
    assert trimmed.messages[:2] == pinned
    assert kept == turns[len(turns) - len(kept):]  # a suffix: only the oldest are dropped
    assert trimmed.dropped == len(turns) - len(kept)
    assert kept and kept[0].role != "tool"  # no result without its call
    last_start = max(i for i, m in enumerate(turns) if m.role != "tool")
    assert len(kept) >= len(turns) - last_start  # the latest turn is whole
    if budget is not None and trimmed.estimated_tokens > budget:
        assert len(kept) == len(turns) - last_start  # over budget only when nothing is left


def test_an_agent_with_tools_turned_off_in_the_config_answers_in_text(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        completion("Paris is usually mild in spring."))
    registry = ToolRegistry()

    @registry.register
    def get_weather(city: str) -> str:
        """Weather for a city.

        Args:
            city: The city.
        """
        return "sunny"

    llm = LlamaCppBackend(httpserver.url_for("/"), enable_tools=False, max_retries=0)
    with pytest.warns(RuntimeWarning, match="enable_tools is false"):
        result = Agent(llm, registry).run("What is the weather in Paris?")
    assert result.stopped_reason == "complete"
    assert result.final_text == "Paris is usually mild in spring."
    chats = [r for r, _ in httpserver.log if r.path == "/v1/chat/completions"]
    assert chats and all("tools" not in json.loads(r.get_data()) for r in chats)
