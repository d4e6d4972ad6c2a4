"""Constrained tool mode: a reply held to a call of an offered tool, or an answer.

The schema properties are checked with a JSON Schema validator (jsonschema) on tool
sets Hypothesis generates; the backend tests use a local stand-in server whose reply
bodies are written here.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from pedrollm.backends import LlamaCppBackend, OllamaBackend
from pedrollm.constrained import (
    EnvelopeStreamParser,
    envelope_schema,
    hermes_call_grammar,
    read_envelope,
)
from pedrollm.toolcalls import get_format
from pedrollm.types import InferenceRequest, ToolDefinition

from .sse import chunk, completion, sse

CHAT = "/v1/chat/completions"
# A template without tools: llama-server then ignores `tools`, so the SDK constrains.
PROPS = {"default_generation_settings": {"n_ctx": 4096}, "chat_template": "{{ x }}",
         "chat_template_caps": {"supports_tools": False, "supports_tool_calls": False}}
WEATHER = ToolDefinition("get_weather", "Weather for a city", {
    "type": "object", "properties": {"city": {"type": "string"},
                                     "days": {"type": "integer", "minimum": 1}},
    "required": ["city"]})
TIME = ToolDefinition("get_time", "The time in a zone", {
    "type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]})


# -- the schema, on generated tool sets -------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
SCALARS = st.sampled_from([
    {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"},
    {"enum": ["a", "b", "c"]}, {"type": "array", "items": {"type": "integer"}},
])


def _schemas(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = SCALARS
    if depth == 0:
        return leaf
    return st.one_of(leaf, _objects(depth - 1),
                     _objects(depth - 1).map(lambda o: {"type": "array", "items": o}))


def _objects(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(NAMES, _schemas(depth), max_size=4).flatmap(
        lambda props: st.sets(st.sampled_from(sorted(props)) if props else st.nothing(),
                              max_size=len(props)).map(
            lambda req: {"type": "object", "properties": props, "required": sorted(req)}))


def instance_of(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against one of the generated schemas."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "string":
        return st.text(max_size=10)
    if kind == "integer":
        return st.integers(-1000, 1000)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(instance_of(schema["items"]), max_size=3)
    props = schema["properties"]
    optional = [k for k in props if k not in schema["required"]]
    return st.fixed_dictionaries(
        {k: instance_of(props[k]) for k in schema["required"]},
        optional={k: instance_of(props[k]) for k in optional})


TOOL_SETS = st.lists(st.tuples(NAMES, _objects(2)), min_size=1, max_size=4,
                     unique_by=lambda t: t[0]).map(
    lambda pairs: [ToolDefinition(name, f"tool {name}", params) for name, params in pairs])


def _valid(instance: Any, schema: dict[str, Any]) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(instance)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), tools=TOOL_SETS)
def test_the_envelope_accepts_every_valid_call_and_answers_only_when_allowed(
        data: st.DataObject, tools: list[ToolDefinition]) -> None:
    tool = data.draw(st.sampled_from(tools))
    args = data.draw(instance_of(tool.parameters))
    call = {"tool_call": {"name": tool.name, "arguments": args}}
    for choice in (None, "auto", "required", tool.name):
        assert _valid(call, envelope_schema(tools, choice)), choice
    assert _valid({"answer": "plain text"}, envelope_schema(tools, "auto"))
    assert not _valid({"answer": "plain text"}, envelope_schema(tools, "required"))
    others = [t for t in tools if t.name != tool.name]
    if others:  # naming another tool allows only that one
        assert not _valid(call, envelope_schema(tools, others[0].name))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), tools=TOOL_SETS)
def test_the_envelope_refuses_unknown_tools_and_arguments_that_break_the_schema(
        data: st.DataObject, tools: list[ToolDefinition]) -> None:
    tool = data.draw(st.sampled_from(tools))
    args = data.draw(instance_of(tool.parameters))
    schema = envelope_schema(tools, "required")
    offered = {t.name for t in tools}
    unknown = data.draw(NAMES.filter(lambda n: n not in offered))
    assert not _valid({"tool_call": {"name": unknown, "arguments": args}}, schema)
    assert not _valid({"tool_call": {"name": tool.name, "arguments": "not an object"}}, schema)
    required = tool.parameters["required"]
    if required:
        missing = {k: v for k, v in args.items() if k != required[0]}
        assert not _valid({"tool_call": {"name": tool.name, "arguments": missing}}, schema)
        kind = tool.parameters["properties"][required[0]].get("type")
        wrong = {"string": 1, "integer": "x", "number": "x", "boolean": "x",
                 "array": "x", "object": "x"}.get(kind or "", 12345)
        broken = {**args, required[0]: wrong}
        assert not _valid({"tool_call": {"name": tool.name, "arguments": broken}}, schema)


# -- reading replies --------------------------------------------------------------------


def test_reading_an_envelope() -> None:
    call = read_envelope('{"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}',
                         [WEATHER])
    assert call is not None and [(c.name, c.args) for c in call.calls] == [
        ("get_weather", {"city": "Oslo"})]
    answer = read_envelope('{"answer": "It is sunny."}', [WEATHER])
    assert answer is not None and answer.content == "It is sunny." and not answer.calls
    assert read_envelope("Just text.", [WEATHER]) is None
    unknown = read_envelope('{"tool_call": {"name": "rm_rf", "arguments": {}}}', [WEATHER])
    assert unknown is not None and not unknown.calls and "rm_rf" in unknown.invalid[0].error
    cut = read_envelope('{"tool_call": {"name": "get_weather", "argu', [WEATHER])
    assert cut is not None and "incomplete" in cut.invalid[0].error
    # An answer cut short by max_tokens keeps the text it got to, escapes decoded.
    cases = [('{\n  "answer": "The first prime is 2, \\"two', 'The first prime is 2, "two'),
             ('{"answer": "caf\\u00', "caf"), ('{"answer": "', "")]
    for text, expected in cases:
        got = read_envelope(text, [WEATHER])
        assert got is not None and got.content == expected and not got.calls


# -- the backend -----------------------------------------------------------------------


def _tool_less(httpserver: HTTPServer, **kw: Any) -> LlamaCppBackend:
    httpserver.expect_request("/props").respond_with_json(PROPS)
    return LlamaCppBackend(httpserver.url_for("/"), max_retries=0, **kw)


def test_a_template_without_tools_gets_the_envelope_schema_instead_of_tools(
        httpserver: HTTPServer) -> None:
    llm = _tool_less(httpserver)
    body = llm.chat_body(InferenceRequest(user_prompt="Weather in Oslo?", tools=[WEATHER]))
    assert "tools" not in body and "tool_choice" not in body
    assert body["json_schema"] == envelope_schema([WEATHER])
    assert "get_weather" in body["messages"][0]["content"]
    assert llm.server_info().tool_mode == "constrained"


def test_a_constrained_call_comes_back_as_a_tool_call_streamed_or_not(
        httpserver: HTTPServer) -> None:
    text = '{"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}'
    httpserver.expect_oneshot_request(CHAT).respond_with_json(completion(text))
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    httpserver.expect_oneshot_request(CHAT).respond_with_data(
        sse(*[chunk({"content": p}) for p in pieces], chunk({}, finish_reason="stop")),
        content_type="text/event-stream")
    llm = _tool_less(httpserver)
    req = InferenceRequest(user_prompt="Weather in Oslo?", tools=[WEATHER], tool_choice="required")
    whole = llm.infer(req)
    deltas = list(llm.stream(req))
    streamed = deltas[-1].response
    assert streamed is not None
    for resp in (whole, streamed):
        assert [(c.name, c.args) for c in resp.tool_calls] == [("get_weather", {"city": "Oslo"})]
        assert resp.text == "" and resp.finish_reason == "tool_calls"
    assert any(d.tool_call is not None and d.tool_call.name == "get_weather" for d in deltas)
    assert not any(d.content for d in deltas)  # no half-written JSON reaches the caller


def test_a_constrained_answer_comes_back_as_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion('{"answer": "2, 3 and 5."}'))
    resp = _tool_less(httpserver).infer(
        InferenceRequest(user_prompt="Three primes?", tools=[WEATHER]))
    assert resp.text == "2, 3 and 5." and not resp.tool_calls and resp.finish_reason == "stop"


def test_an_earlier_call_is_written_back_as_its_envelope(httpserver: HTTPServer) -> None:
    from pedrollm.types import Message, ToolCall

    call = ToolCall(id="call_0", name="get_weather", args={"city": "Oslo"})
    req = InferenceRequest(tools=[WEATHER], messages=[
        Message.user("Weather in Oslo?"), Message.assistant(None, [call]),
        Message.tool("call_0", "sunny")])
    body = _tool_less(httpserver).chat_body(req)
    assert json.loads(body["messages"][2]["content"]) == {
        "tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    assert "tool_calls" not in body["messages"][2]


def test_a_named_tool_choice_constrains_to_that_tool(httpserver: HTTPServer) -> None:
    body = _tool_less(httpserver).chat_body(
        InferenceRequest(user_prompt="x", tools=[WEATHER, TIME], tool_choice="get_time"))
    assert body["json_schema"] == envelope_schema([WEATHER, TIME], "get_time")
    assert "get_weather" not in json.dumps(body["json_schema"])


def test_text_that_is_no_envelope_still_goes_to_the_format_parser(
        httpserver: HTTPServer) -> None:
    hermes = get_format("hermes").render(
        [__import__("pedrollm").ToolCall(id="c", name="get_weather", args={"city": "Rome"})], "")
    httpserver.expect_request(CHAT).respond_with_json(completion(hermes))
    resp = _tool_less(httpserver).infer(InferenceRequest(user_prompt="x", tools=[WEATHER]))
    assert [(c.name, c.args) for c in resp.tool_calls] == [("get_weather", {"city": "Rome"})]


def test_a_request_with_its_own_schema_keeps_it_and_gets_tools_in_the_prompt(
        httpserver: HTTPServer) -> None:
    own = {"type": "object", "properties": {"x": {"type": "integer"}}}
    body = _tool_less(httpserver).chat_body(
        InferenceRequest(user_prompt="x", tools=[WEATHER], json_schema=own))
    assert body["json_schema"] == own and "get_weather" in body["messages"][0]["content"]


def test_prompt_mode_with_a_required_call_sends_a_hermes_grammar(httpserver: HTTPServer) -> None:
    llm = _tool_less(httpserver, tool_mode="prompt")
    required = llm.chat_body(InferenceRequest(user_prompt="x", tools=[WEATHER],
                                              tool_choice="required"))
    assert required["grammar"] == hermes_call_grammar([WEATHER], "required")
    assert "json_schema" not in required
    auto = llm.chat_body(InferenceRequest(user_prompt="x", tools=[WEATHER]))
    assert "grammar" not in auto and "json_schema" not in auto


def test_ollama_without_tool_capability_is_constrained_through_response_format(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/show").respond_with_json(
        {"capabilities": ["completion"], "model_info": {}})
    llm = OllamaBackend(httpserver.url_for("/"), model="smollm2:135m")
    body = llm.chat_body(InferenceRequest(user_prompt="x", tools=[WEATHER]))
    assert body["response_format"]["json_schema"]["schema"] == envelope_schema([WEATHER])
    assert "grammar" not in body and "tools" not in body


def test_tool_mode_is_checked() -> None:
    from pedrollm.errors import ConfigError

    with pytest.raises(ConfigError, match="model.tool_mode"):
        LlamaCppBackend("http://127.0.0.1:9", tool_mode="magic")


def test_the_stream_parser_holds_the_envelope_until_it_is_whole() -> None:
    parser = EnvelopeStreamParser([WEATHER])
    assert parser.feed('{"answer": "Hel') == [] and parser.feed('lo"}') == []
    assert [d.content for d in parser.flush()] == ["Hello"]
    assert parser.finish().content == "Hello"
