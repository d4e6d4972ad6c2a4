"""Typed structured output: dataclass -> JSON schema -> constrained reply -> instance."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pytest
from pytest_httpserver import HTTPServer

from fakellama.server import FakeServer
from pedrollm import (
    InferenceRequest,
    PedroLLMError,
    StructuredOutputError,
    StructuredStream,
    json_schema_for,
)
from pedrollm.backends.llamacpp import LlamaCppBackend
from pedrollm.factory import new_backend
from pedrollm.structured import parse_structured
from pedrollm.types import InferenceResponse

from .sse import completion


class Sky(enum.Enum):
    SUNNY = "sunny"
    CLOUDY = "cloudy"


@dataclass
class Wind:
    speed_kmh: int
    gusts: bool = False


@dataclass
class Weather:
    """The weather in one city.

    Args:
        city: Where.
    """

    city: str
    celsius: float
    sky: Sky
    kind: Literal["forecast", "observation"]
    wind: Wind
    tags: list[str]
    extra: dict[str, int]
    note: Annotated[str | None, "anything else"] = None
    samples: list[float] = field(default_factory=list)


def test_schema_follows_the_type_hints() -> None:
    schema = json_schema_for(Weather)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["city", "celsius", "sky", "kind", "wind", "tags", "extra"]
    props = schema["properties"]
    assert props["city"] == {"type": "string", "description": "Where."}
    assert props["celsius"] == {"type": "number"}
    assert props["sky"] == {"type": "string", "enum": ["sunny", "cloudy"]}
    assert props["kind"] == {"type": "string", "enum": ["forecast", "observation"]}
    assert props["wind"] == {"type": "object", "additionalProperties": False,
                             "properties": {"speed_kmh": {"type": "integer"},
                                            "gusts": {"type": "boolean", "default": False}},
                             "required": ["speed_kmh"]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["extra"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["note"] == {"type": ["string", "null"], "description": "anything else",
                             "default": None}


def test_an_unsupported_field_type_is_a_type_error_naming_the_field() -> None:
    @dataclass
    class Upload:
        name: str
        data: bytes

    with pytest.raises(TypeError, match=r"field Upload\.data: annotation <class 'bytes'> "
                                        r"has no JSON-schema form"):
        json_schema_for(Upload)
    with pytest.raises(TypeError, match="needs a dataclass type, got <class 'dict'>"):
        json_schema_for(dict)


GOOD = {"city": "Paris", "celsius": 21, "sky": "sunny", "kind": "observation",
        "wind": {"speed_kmh": 12}, "tags": ["mild"], "extra": {"uv": 3}}


def test_a_valid_reply_becomes_an_instance_with_its_types() -> None:
    value = parse_structured(InferenceResponse(text=json.dumps(GOOD)), Weather)
    assert value == Weather(city="Paris", celsius=21.0, sky=Sky.SUNNY, kind="observation",
                            wind=Wind(speed_kmh=12), tags=["mild"], extra={"uv": 3})
    assert isinstance(value.celsius, float) and isinstance(value.wind, Wind)


@pytest.mark.parametrize("text, finish, reason", [
    ("Sure! Here it is", "stop", "not JSON"),
    ('{"city": "Par', "length", "cut at max_tokens (finish_reason 'length')"),
    (json.dumps({**GOOD, "sky": "foggy"}), "stop",
     "'sky' must be one of 'sunny', 'cloudy'; got 'foggy'"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "city"}), "stop", "'city' is required"),
    (json.dumps({**GOOD, "wind": {"speed_kmh": "fast"}}), "stop",
     "'wind.speed_kmh' must be integer, got string 'fast'"),
    (json.dumps({**GOOD, "mood": "happy"}), "stop", "'mood' is not an accepted argument"),
    ("[1, 2]", "stop", "the arguments must be object, got array"),
])
def test_a_reply_that_does_not_decode_is_a_typed_error_with_the_raw_text(
        text: str, finish: str, reason: str) -> None:
    with pytest.raises(StructuredOutputError) as info:
        parse_structured(InferenceResponse(text=text, finish_reason=finish), Weather)
    assert isinstance(info.value, PedroLLMError)
    assert info.value.raw_text == text
    assert reason in info.value.reason
    assert str(info.value).startswith("the reply is not a valid Weather: ")


def test_the_dataclass_own_check_failing_is_a_structured_output_error() -> None:
    @dataclass
    class Percent:
        value: int

        def __post_init__(self) -> None:
            if not 0 <= self.value <= 100:
                raise ValueError(f"{self.value} is not a percentage")

    with pytest.raises(StructuredOutputError, match=r"Percent\(\.\.\.\) refused the values: "
                                                    r"140 is not a percentage"):
        parse_structured(InferenceResponse(text='{"value": 140}'), Percent)


@pytest.mark.parametrize("personality", ["llamacpp", "vllm", "ollama", "lmstudio"])
def test_infer_structured_sends_the_schema_and_returns_an_instance(personality: str) -> None:
    with FakeServer(personality=personality) as fake, \
            new_backend({"type": personality, "server_url": fake.url}) as llm:
        value = llm.infer_structured(InferenceRequest(user_prompt="Weather in Paris?",
                                                      max_tokens=400), Weather)
        body = [r.body for r in fake.requests if r.path.endswith("/chat/completions")][-1]
    assert isinstance(value, Weather) and isinstance(value.sky, Sky)
    assert isinstance(value.wind, Wind)
    sent = body.get("json_schema") or body["response_format"]["json_schema"]["schema"]
    assert sent == json_schema_for(Weather)


def test_a_request_with_its_own_schema_is_refused(fake_llama_server: FakeServer) -> None:
    with LlamaCppBackend(fake_llama_server.url) as llm, \
            pytest.raises(ValueError, match="already has a json_schema; structured output sets "
                                            "it from Weather"):
        llm.infer_structured(InferenceRequest(user_prompt="x", json_schema={"type": "object"}),
                             Weather)


def test_stream_structured_yields_the_deltas_then_the_instance(fake_llama_server: FakeServer
                                                               ) -> None:
    req = InferenceRequest(user_prompt="Weather in Paris?", max_tokens=400)
    with LlamaCppBackend(fake_llama_server.url) as llm:
        stream = llm.stream_structured(req, Weather)
        assert isinstance(stream, StructuredStream)
        deltas = list(stream)
        assert deltas[-1].response is not None and deltas[-1].response is stream.response
        text = "".join(d.content for d in deltas)
        assert text == stream.response.text
        assert stream.result == parse_structured(stream.response, Weather)
        # .result alone reads the whole stream
        assert isinstance(llm.stream_structured(req, Weather).result, Weather)


def _sse(text: str) -> str:
    pieces = [text[:5], text[5:]]
    events = [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
              for p in pieces]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def _answering(httpserver: HTTPServer, text: str, *, stream: bool) -> LlamaCppBackend:
    chat = httpserver.expect_request("/v1/chat/completions")
    if stream:
        chat.respond_with_data(_sse(text), content_type="text/event-stream")
    else:
        chat.respond_with_json(completion(text))
    httpserver.expect_request("/props").respond_with_json({})
    return LlamaCppBackend(httpserver.url_for("/"), max_retries=0)


def test_a_streamed_reply_that_does_not_decode_ends_the_loop_with_the_error(
        httpserver: HTTPServer) -> None:
    with _answering(httpserver, '{"city": 3}', stream=True) as llm:
        stream = llm.stream_structured(InferenceRequest(user_prompt="x"), Weather)
        seen: list[Any] = []
        with pytest.raises(StructuredOutputError) as info:
            for delta in stream:
                seen.append(delta)
        assert "".join(d.content for d in seen) == '{"city": 3}'  # every delta came first
        assert info.value.raw_text == '{"city": 3}'
        with pytest.raises(StructuredOutputError):
            _ = stream.result
        assert stream.response.text == '{"city": 3}'


def test_a_stream_left_early_still_gives_its_result(httpserver: HTTPServer) -> None:
    with _answering(httpserver, json.dumps(GOOD), stream=True) as llm:
        stream = llm.stream_structured(InferenceRequest(user_prompt="x"), Weather)
        for _ in stream:
            break
        assert stream.result.city == "Paris"


def test_a_closed_stream_has_no_result(httpserver: HTTPServer) -> None:
    with _answering(httpserver, json.dumps(GOOD), stream=True) as llm:
        stream = llm.stream_structured(InferenceRequest(user_prompt="x"), Weather)
        next(iter(stream))
        stream.close()
        with pytest.raises(RuntimeError, match="closed before its reply was complete"):
            _ = stream.result


def test_infer_structured_raises_on_a_reply_that_is_not_the_type(httpserver: HTTPServer
                                                                 ) -> None:
    with _answering(httpserver, "I cannot do JSON.", stream=False) as llm, \
            pytest.raises(StructuredOutputError, match="not JSON") as info:
        llm.infer_structured(InferenceRequest(user_prompt="x"), Weather)
    assert info.value.raw_text == "I cannot do JSON."
