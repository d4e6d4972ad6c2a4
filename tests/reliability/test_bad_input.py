"""Bad configs and bad requests: one clear error naming the field, before any network call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pedrollm import errors
from pedrollm.factory import new_backend
from pedrollm.types import InferenceRequest, ToolDefinition
from tests.reliability.canned import CannedServer

# (field, bad value) -> the field the one-line error must name.
BAD_CONFIGS: list[tuple[str, Any]] = [
    # wrong types
    ("context_size", "4096"),
    ("context_size", 4096.5),
    ("temperature", "hot"),
    ("enable_tools", "yes"),
    ("native_tools", "auto"),
    ("max_retries", 1.5),
    ("read_timeout", "10"),
    ("model_name", 5),
    ("api_key", 12345),
    ("tool_call_format", ["hermes"]),
    # unknown backend
    ("type", "llama-cpp"),
    ("type", "gpt4all"),
    ("type", None),
    # bad URLs
    ("server_url", "localhost:8081"),
    ("server_url", "127.0.0.1:8081"),
    ("server_url", "ftp://127.0.0.1:8081"),
    ("server_url", "http://127.0.0.1:70000"),
    ("server_url", "http://127.0.0.1:0"),
    ("server_url", "http://127.0.0.1:port"),
    ("server_url", "http://"),
    ("server_url", "http://local host:8081"),
    ("server_url", ""),
    # negative or zero sizes and times
    ("context_size", -1),
    ("context_size", 0),
    ("usable_context", -4096),
    ("max_tokens", -5),
    ("max_retries", -1),
    ("connect_timeout", -1),
    ("read_timeout", 0),
    ("retry_budget", -0.5),
    ("temperature", -0.1),
    ("temperature", float("nan")),
]


@pytest.mark.parametrize(("field", "value"), BAD_CONFIGS,
                         ids=[f"{f}={v!r}" for f, v in BAD_CONFIGS])
def test_a_bad_config_value_gives_one_error_naming_its_field(field: str, value: Any) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        new_backend({"type": "llamacpp", field: value})
    message = str(caught.value)
    assert len(message.splitlines()) == 1, message
    assert f"model.{field}" in message


def test_an_unknown_config_field_is_named_with_a_suggestion() -> None:
    with pytest.raises(errors.ConfigError, match="'context_sise'.*'context_size'"):
        new_backend({"type": "llamacpp", "context_sise": 4096})


def test_usable_context_larger_than_context_is_refused() -> None:
    with pytest.raises(errors.ConfigError, match="model.usable_context"):
        new_backend({"type": "llamacpp", "context_size": 2048, "usable_context": 4096})


def test_a_bad_environment_value_names_the_variable_and_field(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEDROLLM_CONTEXT_SIZE", "-1")
    monkeypatch.setenv("PEDROLLM_CONFIG", "")
    with pytest.raises(errors.ConfigError) as caught:
        new_backend()
    assert "PEDROLLM_CONTEXT_SIZE" in str(caught.value)
    assert "model.context_size" in str(caught.value)


# -- requests -----------------------------------------------------------------------------

OBJ = {"type": "object", "properties": {"city": {"type": "string"}}}
BAD_TOOLS: list[tuple[str, list[ToolDefinition], Any, str]] = [
    ("space in name", [ToolDefinition("get weather", "", OBJ)], None, "tools[0].name"),
    ("empty name", [ToolDefinition("", "", OBJ)], None, "tools[0].name"),
    ("65-character name", [ToolDefinition("x" * 65, "", OBJ)], None, "tools[0].name"),
    ("parameters a list", [ToolDefinition("f", "", ["city"])], None,
     "tools[0].parameters"),
    ("parameters of type array", [ToolDefinition("f", "", {"type": "array"})], None,
     "tools[0].parameters.type"),
    ("properties a list", [ToolDefinition("f", "", {"type": "object", "properties": ["a"]})],
     None, "tools[0].parameters.properties"),
    ("required not names", [ToolDefinition("f", "", {**OBJ, "required": "city"})], None,
     "tools[0].parameters.required"),
    ("same name twice", [ToolDefinition("f", "", OBJ), ToolDefinition("f", "", OBJ)], None,
     "tools[1].name"),
    ("tool_choice not offered", [ToolDefinition("f", "", OBJ)], "g", "tool_choice"),
]


@pytest.fixture(scope="module")
def tripwire() -> Iterator[CannedServer]:
    """A server the tests must never reach: it counts every request it gets."""
    server = CannedServer().start()
    server.set_reply(500, [], b"this server must not be contacted")
    yield server
    server.stop()


def _refused(tripwire: CannedServer, native_tools: bool | None, call: str,
             tools: list[ToolDefinition], tool_choice: Any) -> errors.RequestValidationError:
    hits = tripwire.hits
    backend = new_backend({"type": "llamacpp", "server_url": tripwire.url,
                           "native_tools": native_tools, "max_retries": 0})
    req = InferenceRequest(user_prompt="What is the weather in Paris?", tools=tools,
                           tool_choice=tool_choice)
    try:
        with pytest.raises(errors.RequestValidationError) as caught:
            if call == "infer":
                backend.infer(req)
            else:
                list(backend.stream(req))
    finally:
        backend.close()
    assert tripwire.hits == hits, "the server was contacted before the request was refused"
    return caught.value


@pytest.mark.parametrize("call", ["infer", "stream"])
@pytest.mark.parametrize(("case", "tools", "choice", "field"), BAD_TOOLS,
                         ids=[c[0] for c in BAD_TOOLS])
def test_an_invalid_tool_is_refused_naming_its_field_before_any_network_call(
    tripwire: CannedServer, case: str, tools: list[ToolDefinition], choice: Any, field: str,
    call: str,
) -> None:
    error = _refused(tripwire, True, call, tools, choice)
    assert error.field == field
    assert str(error).startswith(field)


@pytest.mark.parametrize("call", ["infer", "stream"])
@pytest.mark.parametrize("native_tools", [None, False], ids=["ask-server", "tools-in-prompt"])
def test_an_invalid_tool_is_refused_before_tool_support_is_discovered(
        tripwire: CannedServer, native_tools: bool | None, call: str) -> None:
    error = _refused(tripwire, native_tools, call, [ToolDefinition("get weather", "", OBJ)],
                     None)
    assert error.field == "tools[0].name"
