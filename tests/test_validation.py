"""Bad requests fail before any network call, with errors naming the field."""

from __future__ import annotations

import pytest

from pedrollm.backends.openai import OpenAIBackend
from pedrollm.errors import RequestValidationError
from pedrollm.types import InferenceRequest, Message, ToolDefinition
from pedrollm.validation import validate_request

OK_TOOL = ToolDefinition("get_weather", "", {"type": "object", "properties": {}})


@pytest.mark.parametrize(("req", "field", "words"), [
    (InferenceRequest(), "messages", "no messages"),
    (InferenceRequest(user_prompt="x", temperature=-0.1), "temperature", "at least 0"),
    (InferenceRequest(user_prompt="x", temperature=float("nan")), "temperature", "finite"),
    (InferenceRequest(user_prompt="x", max_tokens=0), "max_tokens", "at least 1"),
    (InferenceRequest(user_prompt="x", top_p=1.5), "top_p", "at most 1"),
    (InferenceRequest(user_prompt="x", grammar="root ::= \"a\"", json_schema={"type": "object"}),
     "grammar", "json_schema"),
    (InferenceRequest(user_prompt="x", grammar="root ::= \"a\"", tools=[OK_TOOL]),
     "grammar", "tools"),
    (InferenceRequest(user_prompt="x", tools=[ToolDefinition("get weather!")]),
     "tools[0].name", "must match"),
    (InferenceRequest(user_prompt="x", tools=[ToolDefinition("f", "", {"type": "array"})]),
     "tools[0].parameters.type", "'object'"),
    (InferenceRequest(user_prompt="x", tools=[ToolDefinition("f", "", ["x"])]),  # type: ignore[arg-type]
     "tools[0].parameters", "JSON-schema object"),
    (InferenceRequest(user_prompt="x", tools=[OK_TOOL, OK_TOOL]), "tools[1].name", "twice"),
    (InferenceRequest(user_prompt="x", tool_choice="get_weather"), "tool_choice", "no tools"),
    (InferenceRequest(messages=[Message(role="tool", content="r")]),
     "messages[0].tool_call_id", "name the call"),
    (InferenceRequest(user_prompt="x", stop="END"),  # type: ignore[arg-type]
     "stop", "list of strings"),
])
def test_bad_request_names_the_field(req: InferenceRequest, field: str, words: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_request(req)
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")
    assert words in str(info.value)


def test_tool_name_of_65_characters_is_refused_and_64_accepted() -> None:
    validate_request(InferenceRequest(user_prompt="x", tools=[ToolDefinition("a" * 64)]))
    with pytest.raises(RequestValidationError):
        validate_request(InferenceRequest(user_prompt="x", tools=[ToolDefinition("a" * 65)]))


def test_invalid_request_sends_nothing() -> None:
    # Port 9 is closed: a request that got as far as the network would fail differently.
    client = OpenAIBackend("http://127.0.0.1:9")
    with pytest.raises(RequestValidationError, match="max_tokens"):
        client.infer(InferenceRequest(user_prompt="x", max_tokens=-1))
    with pytest.raises(RequestValidationError, match="tools"):
        client.stream(InferenceRequest(user_prompt="x", tools=[ToolDefinition("bad name")]))
