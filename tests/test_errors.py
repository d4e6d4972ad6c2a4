"""Each server's error body maps to the SDK's exception class, with its details."""

from __future__ import annotations

import json

import pytest

from pedrollm import errors as e


@pytest.mark.parametrize(("status", "body", "cls"), [
    (400, {"error": {"code": 400, "message": "bad json", "type": "invalid_request_error"}},
     e.BadRequest),
    (401, {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}},
     e.AuthenticationError),
    (404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}},
     e.NotFound),
    (429, {"error": {"message": "busy", "type": "rate_limit_error"}}, e.RateLimited),
    (500, {"error": {"code": 500, "message": "boom", "type": "server_error"}}, e.ServerError),
    (503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
     e.ModelLoading),
    (501, {"error": {"code": 501, "message": "no metrics", "type": "not_supported_error"}},
     e.ServerError),
    (403, {"error": "forbidden"}, e.AuthenticationError),
])
def test_llama_server_and_openai_bodies_map_to_classes(
    status: int, body: dict[str, object], cls: type[e.HTTPError]
) -> None:
    err = e.error_from_response(status, json.dumps(body))
    assert type(err) is cls
    assert err.status == status
    assert isinstance(err, e.PedroLLMError)


def test_context_overflow_carries_both_numbers() -> None:
    body = {"error": {"code": 400, "type": "exceed_context_size_error",
                      "message": "the request exceeds the available context size",
                      "n_prompt_tokens": 5000, "n_ctx": 4096}}
    err = e.error_from_response(400, json.dumps(body))
    assert isinstance(err, e.ContextOverflow) and isinstance(err, e.BadRequest)
    assert (err.n_prompt_tokens, err.n_ctx) == (5000, 4096)
    assert "exceeds the available context size" in str(err)


def test_vllm_flat_body_keeps_its_message() -> None:
    body = {"object": "error", "message": "max_tokens must be at least 1",
            "type": "BadRequestError", "param": None, "code": 400}
    err = e.error_from_response(400, json.dumps(body))
    assert isinstance(err, e.BadRequest)
    assert err.message == "max_tokens must be at least 1" and err.error_type == "BadRequestError"


def test_vllm_tools_refusal_is_tools_not_enabled() -> None:
    body = {"object": "error", "type": "BadRequestError", "code": 400, "message":
            '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser '
            "to be set"}
    assert isinstance(e.error_from_response(400, json.dumps(body)), e.ToolsNotEnabled)


def test_ollama_string_error_and_plain_text_bodies() -> None:
    ollama = e.error_from_response(404, json.dumps({"error": "model 'x' not found"}))
    assert isinstance(ollama, e.NotFound) and ollama.message == "model 'x' not found"
    text = e.error_from_response(502, "Bad Gateway")
    assert isinstance(text, e.ServerError) and text.message == "Bad Gateway"
    empty = e.error_from_response(500, "")
    assert empty.message == "HTTP 500"


def test_retry_after_header_parsed_in_seconds() -> None:
    err = e.error_from_response(429, "{}", {"Retry-After": "3"})
    assert isinstance(err, e.RateLimited) and err.retry_after == 3.0
    assert e.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_vllm_worded_overflow_becomes_context_overflow_with_numbers() -> None:
    body = {"object": "error", "type": "BadRequestError", "code": 400, "message":
            "This model's maximum context length is 4096 tokens. However, you requested "
            "5000 tokens (4900 in the messages, 100 in the completion). Please reduce the "
            "length of the messages or completion."}
    err = e.error_from_response(400, json.dumps(body))
    assert isinstance(err, e.ContextOverflow)
    assert (err.n_prompt_tokens, err.n_ctx) == (4900, 4096)


# -- context overflow, in every wording and every envelope ---------------------------

LLAMA_WORDS = ("request (72667 tokens) exceeds the available context size (4096 tokens), "
               "try increasing it")


@pytest.mark.parametrize(("server", "status", "body", "numbers"), [
    # llama-server's own envelope, typed and with both numbers as fields.
    ("llama-server", 400, {"error": {"code": 400, "message": LLAMA_WORDS,
                                     "type": "exceed_context_size_error",
                                     "n_prompt_tokens": 72667, "n_ctx": 4096}},
     (72667, 4096)),
    # llama-server before it sent the numbers.
    ("llama-server (older)", 400, {"error": {
        "code": 400, "type": "invalid_request_error",
        "message": "the request exceeds the available context size, try increasing the "
                   "context size or enable context shift"}}, (None, None)),
    # LM Studio runs llama.cpp: llama-server's words in LM Studio's envelope.
    ("LM Studio (llama.cpp words)", 400, {"error": LLAMA_WORDS}, (72667, 4096)),
    ("LM Studio (its own words)", 400, {"error": (
        "Trying to keep the first 5000 tokens when context the overflows. However, the "
        "model is loaded with context length of only 4096 tokens, which is not enough. "
        "Try to load the model with a larger context length, or provide a shorter input")},
     (5000, 4096)),
    # vLLM's flat envelope, with llama-server's words (as the fake's vLLM sends them)...
    ("vLLM (llama.cpp words)", 400, {"object": "error", "message": LLAMA_WORDS,
                                     "type": "BadRequestError", "param": None, "code": 400},
     (72667, 4096)),
    # ... and with vLLM's own, old and new, and its decoder-prompt check.
    ("vLLM", 400, {"object": "error", "type": "BadRequestError", "code": 400, "message": (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 "
        "tokens (4900 in the messages, 100 in the completion). Please reduce the length "
        "of the messages or completion.")}, (4900, 4096)),
    ("vLLM (newer)", 400, {"error": {"type": "BadRequestError", "code": 400, "message": (
        "This model's maximum context length is 2048 tokens. However, your request has "
        "3000 input tokens. Please reduce the length of the input messages.")}},
     (3000, 2048)),
    ("vLLM (current)", 400, {"error": {"type": "BadRequestError", "code": 400,
                                       "param": "input_tokens", "message": (
        "This model's maximum context length is 4096 tokens. However, you requested 0 output "
        "tokens and your prompt contains at least 5001 input tokens, for a total of at least "
        "5001 tokens. Please reduce the length of the input prompt or the number of requested "
        "output tokens. (parameter=input_tokens, value=5001)")}}, (5001, 4096)),
    ("LM Studio (n_keep)", 400, {"error": (
        "Error: the prompt does not fit (n_keep: 5000>= n_ctx: 4096)")}, (5000, 4096)),
    ("vLLM (decoder prompt)", 400, {"object": "error", "type": "BadRequestError", "message": (
        "The decoder prompt (length 5000) is longer than the maximum model length of 4096. "
        "Make sure that `max_model_len` is no smaller than the number of text tokens.")},
     (5000, 4096)),
    # OpenAI: a code and words, no number fields.
    ("OpenAI", 400, {"error": {"code": "context_length_exceeded",
                               "type": "invalid_request_error", "message": (
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages.")}},
     (9000, 8192)),
    # Ollama quotes its llama runner's JSON error as a string.
    ("Ollama (runner quoted)", 400, {"error": json.dumps({"error": {
        "code": 400, "message": LLAMA_WORDS, "type": "exceed_context_size_error",
        "n_prompt_tokens": 72667, "n_ctx": 4096}})}, (72667, 4096)),
    ("Ollama (embeddings)", 500, {"error": "the input length exceeds the context length"},
     (None, None)),
    ("Ollama (shift off)", 400, {"error": (
        "the prompt is longer than the context length currently available to the model")},
     (None, None)),
    # Ollama's OpenAI layer with llama-server's words.
    ("Ollama /v1", 400, {"error": {"message": LLAMA_WORDS, "type": "invalid_request_error",
                                   "param": None, "code": None}}, (72667, 4096)),
])
def test_every_known_overflow_wording_is_context_overflow(
    server: str, status: int, body: dict[str, object],
    numbers: tuple[int | None, int | None],
) -> None:
    err = e.error_from_response(status, json.dumps(body))
    assert isinstance(err, e.ContextOverflow), f"{server}: {type(err).__name__}: {err}"
    assert (err.n_prompt_tokens, err.n_ctx) == numbers
    assert err.status == status


def test_a_quoted_envelope_is_read_for_its_message() -> None:
    body = {"error": json.dumps({"error": {"message": LLAMA_WORDS,
                                           "type": "exceed_context_size_error"}})}
    err = e.error_from_response(400, json.dumps(body))
    assert err.message == LLAMA_WORDS and err.error_type == "exceed_context_size_error"


@pytest.mark.parametrize("message", [
    "max_tokens must be at least 1",
    "context window is fine",
    '{"not": "an error"}',
    "the model's maximum length of a tool name is 64",
])
def test_other_bad_requests_are_not_overflow(message: str) -> None:
    err = e.error_from_response(400, json.dumps({"error": message}))
    assert type(err) is e.BadRequest


@pytest.mark.parametrize("personality", ["llamacpp", "vllm", "lmstudio"])
def test_every_fake_personality_s_overflow_reply_is_context_overflow(personality: str) -> None:
    from fakellama.server import FakeServer
    from pedrollm.factory import new_backend
    from pedrollm.types import InferenceRequest

    with FakeServer(personality=personality, ctx_size=256) as fake, \
            new_backend({"type": personality, "server_url": fake.url, "max_retries": 0,
                         "context_size": 256}) as backend:
        with pytest.raises(e.ContextOverflow) as info:
            backend.infer(InferenceRequest(user_prompt="word " * 2000, max_tokens=4))
    assert info.value.n_ctx == 256
    assert info.value.n_prompt_tokens is not None and info.value.n_prompt_tokens > 256


def test_the_fake_ollama_truncates_an_over_long_prompt_as_ollama_does() -> None:
    # Ollama keeps the end of an over-long prompt and answers 200 (its runner logs
    # "truncating input prompt"); the fake's Ollama personality does the same.
    from fakellama.server import FakeServer
    from pedrollm.factory import new_backend
    from pedrollm.types import InferenceRequest

    with FakeServer(personality="ollama", ctx_size=256) as fake, \
            new_backend({"type": "ollama", "server_url": fake.url, "max_retries": 0,
                         "context_size": 256, "model_name": "scripted-tiny.gguf"}) as backend:
        reply = backend.infer(InferenceRequest(user_prompt="word " * 2000, max_tokens=4))
    assert reply.finish_reason in ("stop", "length") and reply.text
