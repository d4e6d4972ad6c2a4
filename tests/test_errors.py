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
