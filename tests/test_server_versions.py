"""The SDK reads what each emulated server version really sends.

The first half gives the SDK's error mapping the bodies as each server's source writes
them (copied from the source named beside each); the second half runs each backend
against the fake being that version, so the fake and the SDK are held to the same bodies.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from fakellama.server import FakeServer
from pedrollm import errors as e
from pedrollm.factory import new_backend
from pedrollm.types import InferenceRequest, ToolDefinition

MODEL = "scripted-tiny.gguf"
WEATHER = ToolDefinition(name="get_weather", description="Weather for a city",
                         parameters={"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"]})


def _error(status: int, body: Any) -> e.HTTPError:
    return e.error_from_response(status, json.dumps(body))


# -- bodies from the servers' sources --------------------------------------------------------


@pytest.mark.parametrize(("source", "body"), [
    # ollama v0.12.0 openai/openai.go:697-706: a handler's error always typed api_error.
    ("ollama 0.12", {"error": {"message": "model 'x' not found", "type": "api_error",
                               "param": None, "code": None}}),
    # ollama v0.32.15 middleware/openai.go:64-73: typed by its status.
    ("ollama 0.32", {"error": {"message": "model 'x' not found", "type": "not_found_error",
                               "param": None, "code": None}}),
    # vllm v0.10.0 openai/serving_engine.py:450-453, flat ErrorResponse.
    ("vllm 0.10", {"object": "error", "message": "The model `x` does not exist.",
                   "type": "NotFoundError", "param": None, "code": 404}),
    # vllm v0.33.0 serve/engine/serving.py:75-83, nested ErrorResponse.
    ("vllm 0.33", {"error": {"message": "The model `x` does not exist. Valid aliases: m.",
                             "type": "NotFoundError", "param": "model", "code": 404}}),
])
def test_an_unknown_model_is_not_found_in_every_version(source: str, body: Any) -> None:
    err = _error(404, body)
    assert isinstance(err, e.NotFound), source
    assert "x" in err.message and "{" not in err.message


@pytest.mark.parametrize(("source", "body", "numbers"), [
    # vllm v0.10.0 openai/serving_engine.py:621-631 with serving_chat.py:204's " None".
    ("vllm 0.10, with max_tokens", {"object": "error", "type": "BadRequestError", "param": None,
                                    "code": 400, "message": (
        "This model's maximum context length is 64 tokens. However, you requested 110 tokens "
        "(10 in the messages, 100 in the completion). Please reduce the length of the "
        "messages or completion. None")}, (10, 64)),
    ("vllm 0.10, no max_tokens", {"object": "error", "type": "BadRequestError", "param": None,
                                  "code": 400, "message": (
        "This model's maximum context length is 64 tokens. However, you requested 80 tokens "
        "in the messages, Please reduce the length of the messages. None")}, (80, 64)),
    # vllm v0.33.0 renderers/params.py:531-550 via exceptions.py:49-56.
    ("vllm 0.33", {"error": {"type": "BadRequestError", "param": "input_tokens", "code": 400,
                             "message": (
        "This model's maximum context length is 64 tokens. However, your prompt contains at "
        "least 65 input tokens, which exceeds this limit even without any output tokens. "
        "Please reduce the length of the input prompt. (parameter=input_tokens, value=65)")}},
     (65, 64)),
    # LM Studio 0.3 (lmstudio-bug-tracker #546, dyad-sh/dyad#925).
    ("lmstudio 0.3", {"error": (
        "Trying to keep the first 500 tokens when context the overflows. However, the model "
        "is loaded with context length of only 64 tokens, which is not enough. Try to load "
        "the model with a larger context length, or provide a shorter input")}, (500, 64)),
    # LM Studio 0.4 (Gitlawb/openclaude#353).
    ("lmstudio 0.4", {"error": (
        "The number of tokens to keep from the initial prompt is greater than the context "
        "length (n_keep: 500>= n_ctx: 64). Try to load the model with a larger context "
        "length, or provide a shorter input.")}, (500, 64)),
])
def test_each_version_s_overflow_is_context_overflow_with_its_numbers(
        source: str, body: Any, numbers: tuple[int, int]) -> None:
    err = _error(400, body)
    assert isinstance(err, e.ContextOverflow), source
    assert (err.n_prompt_tokens, err.n_ctx) == numbers


def test_current_ollama_s_shift_off_refusal_is_context_overflow() -> None:
    # ollama v0.32.15 llm/llama_server.go:295-299, through middleware/openai.go's writeError.
    err = _error(400, {"error": {"message": (
        "the prompt is longer than the context length currently available to the model; "
        "shorten the prompt, adjust the context length in settings, or use a model with a "
        "longer context length"), "type": "invalid_request_error", "param": None,
        "code": None}})
    assert isinstance(err, e.ContextOverflow)


@pytest.mark.parametrize("body", [
    # LM Studio 0.4, no token (agustif/opencode-lmstudio#41) and an unknown one.
    {"error": {"type": "invalid_request", "code": "invalid_api_key", "message":
               "An LM Studio API token is required to make requests to this server, ..."}},
    {"error": {"type": "invalid_request", "code": "invalid_api_key", "message":
               "Malformed LM Studio API token provided: sk-lm-wron... Ensure you are using "
               "a valid token."}},
    # vLLM, both versions (openai/api_server.py:1247; serve/middleware/authenticate.py:60).
    {"error": "Unauthorized"},
])
def test_each_server_s_401_is_authentication_error(body: Any) -> None:
    err = _error(401, body)
    assert isinstance(err, e.AuthenticationError) and err.message


@pytest.mark.parametrize("body", [
    {"object": "error", "type": "BadRequestError", "param": None, "code": 400, "message":
     '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'},
    {"error": {"type": "BadRequestError", "param": None, "code": 400, "message":
               '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser '
               "to be set"}},
])
def test_vllm_s_tools_refusal_in_either_envelope_is_tools_not_enabled(body: Any) -> None:
    assert isinstance(_error(400, body), e.ToolsNotEnabled)


def test_vllm_validation_errors_keep_their_message_in_either_version() -> None:
    flat = _error(400, {"object": "error", "type": "Bad Request", "param": None, "code": 400,
                        "message": "[\"Unsupported Media Type: Only 'application/json' is "
                                   "allowed\"]"})
    nested = _error(400, {"error": {"type": "Bad Request", "param": None, "code": 400,
                                    "message": "1 validation error:\n  Unsupported Media Type: "
                                               "Only 'application/json' is allowed"}})
    for err in (flat, nested):
        assert type(err) is e.BadRequest and "Unsupported Media Type" in err.message


# -- each backend against the fake being each version ---------------------------------------


def _backend(fake: FakeServer, kind: str, **extra: Any) -> Any:
    return new_backend({"type": kind, "server_url": fake.url, "max_retries": 0,
                        "model_name": MODEL, **extra})


@pytest.mark.parametrize("spec", ["ollama@0.12", "ollama@0.32"])
def test_ollama_backend_reads_the_allocated_window_and_unknown_models(spec: str) -> None:
    with FakeServer(personality=spec, ctx_size=2048) as fake:
        with _backend(fake, "ollama") as backend:
            assert backend.get_context_window() == 2048
            assert backend.server_info().version == fake.app.personality.reported_version
        with _backend(fake, "ollama", model_name="nope") as other, \
                pytest.raises(e.NotFound, match="model 'nope' not found"):
            other.infer(InferenceRequest(user_prompt="hi"))


@pytest.mark.parametrize("spec", ["vllm@0.10", "vllm@0.33"])
def test_vllm_backend_against_each_version(spec: str) -> None:
    with FakeServer(personality=spec, personality_options={"tool_parser": ""},
                    ctx_size=256) as fake:
        with _backend(fake, "vllm") as backend:
            assert backend.get_context_window() == 256
            grammar = backend.chat_body(InferenceRequest(user_prompt="hi", grammar='root ::= "y"'))
            field = "guided_grammar" if spec == "vllm@0.10" else "structured_outputs"
            assert field in grammar
            with pytest.raises(e.ToolsNotEnabled, match="--tool-call-parser <parser>"):
                backend.infer(InferenceRequest(user_prompt="weather?", tools=[WEATHER]))
            with pytest.raises(e.ContextOverflow) as overflow:
                backend.infer(InferenceRequest(user_prompt="word " * 600, max_tokens=4))
        assert overflow.value.n_ctx == 256 and (overflow.value.n_prompt_tokens or 0) > 256
        with _backend(fake, "vllm", model_name="other") as other, \
                pytest.raises(e.NotFound, match="does not exist"):
            other.infer(InferenceRequest(user_prompt="hi"))


@pytest.mark.parametrize("spec", ["lmstudio@0.3", "lmstudio@0.4"])
def test_lmstudio_backend_against_each_version(spec: str) -> None:
    with FakeServer(personality=spec, ctx_size=512) as fake, _backend(fake, "lmstudio") as backend:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert backend.get_context_window() == 512
        assert any("maximum context" in str(w.message) for w in caught)
        with pytest.raises(e.NotFound):
            backend.client.get_json("/v1/no-such-route", retry=False)
        with pytest.raises(e.ContextOverflow) as overflow:
            backend.infer(InferenceRequest(user_prompt="word " * 600, max_tokens=4))
    assert overflow.value.n_ctx == 512


def test_lmstudio_0_4_token_through_the_backend() -> None:
    with FakeServer(personality="lmstudio@0.4", api_key="sk-lm-secret") as fake:
        with _backend(fake, "lmstudio", api_key="sk-lm-wrong") as wrong, \
                pytest.raises(e.AuthenticationError) as info:
            wrong.infer(InferenceRequest(user_prompt="hi"))
        with _backend(fake, "lmstudio", api_key="sk-lm-secret") as right:
            assert right.infer(InferenceRequest(user_prompt="hi")).text
    assert info.value.status == 401 and "sk-lm-secret" not in str(info.value)


def test_ollama_without_a_configured_model_asks_for_the_first_it_lists() -> None:
    # Ollama refuses a chat naming no model (400 "model is required"); one listed is used.
    with FakeServer(personality="ollama") as fake, \
            new_backend({"type": "ollama", "server_url": fake.url}) as llm:
        assert llm.infer(InferenceRequest(user_prompt="Say hello.", max_tokens=4)).text
        chat = [r for r in fake.requests if r.path == "/v1/chat/completions"]
        assert chat[-1].body["model"] == MODEL
