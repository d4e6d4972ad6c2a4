"""The three tiers of answer: a fixture, llama-server's own refusal, a synthesized reply.

The expected errors are what the pinned llama-server (scripted model, --jinja) answered
the same requests; `contracts/test_differential.py` re-checks them against the real server.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import pytest
import requests
from fake_helpers import WEATHER_TOOL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakellama.server import FakeServer

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Say hello."}]


def _post(fake: FakeServer, body: Any, path: str = CHAT, **kw: Any) -> requests.Response:
    return requests.post(fake.url + path, json=body, timeout=10, **kw)


def _events(reply: requests.Response) -> list[Any]:
    out = []
    for block in reply.text.split("\n\n"):
        if block.startswith("data: "):
            payload = block[len("data: "):]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


# -- honesty: a fixture answers only the request it can answer ---------------------------------


def test_an_empty_message_list_is_valid_and_not_answered_with_a_recorded_error(
        fake_llama_server: FakeServer) -> None:
    reply = _post(fake_llama_server, {"messages": []})
    assert (reply.status_code, reply.headers["X-Fakellama-Match"]) == (200, "synthesized")
    assert reply.json()["choices"][0]["finish_reason"] == "stop"


def test_a_message_without_content_is_refused_not_answered_from_chat_hello(
        fake_llama_server: FakeServer) -> None:
    reply = _post(fake_llama_server, {"messages": [{"role": "user"}]})
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "All non-assistant messages must contain 'content'"


def test_an_assistant_prefill_continues_the_message(fake_llama_server: FakeServer) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]
    reply = _post(fake_llama_server, {"messages": messages})
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"].startswith("Hel")


def test_a_smaller_max_tokens_is_not_answered_from_a_longer_recording(
        fake_llama_server: FakeServer) -> None:
    recorded = _post(fake_llama_server, {"messages": HELLO})
    assert recorded.headers["X-Fakellama-Match"] == "exact"
    assert recorded.json()["usage"]["completion_tokens"] > 3
    cut = _post(fake_llama_server, {"messages": HELLO, "max_tokens": 3})
    assert cut.headers["X-Fakellama-Match"] == "synthesized"
    body = cut.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert body["choices"][0]["message"]["content"] == "fak"


def test_a_larger_max_tokens_and_other_sampling_still_get_the_recording(
        fake_llama_server: FakeServer) -> None:
    reply = _post(fake_llama_server, {"messages": HELLO, "max_tokens": 500, "temperature": 0.2})
    assert reply.headers["X-Fakellama-Match"] == "sampling"
    assert reply.headers["X-Fakellama-Fixture"] == "chat-hello"


def test_a_stop_string_in_the_recorded_text_is_not_ignored(
        fake_llama_server: FakeServer) -> None:
    recorded = _post(fake_llama_server, {"messages": HELLO}).json()
    text = recorded["choices"][0]["message"]["content"]
    reply = _post(fake_llama_server, {"messages": HELLO, "stop": [text[2:5]]})
    assert reply.headers["X-Fakellama-Match"] == "synthesized"


def test_replays_carry_a_fresh_id_and_created(fake_llama_server: FakeServer) -> None:
    first = _post(fake_llama_server, {"messages": HELLO}).json()
    second = _post(fake_llama_server, {"messages": HELLO}).json()
    assert first["id"] != second["id"]
    assert first["id"].startswith("chatcmpl-") and len(first["id"]) == len("chatcmpl-") + 32


def test_a_recorded_error_answers_only_its_own_request(fake_llama_server: FakeServer) -> None:
    from fakellama.fixtures import bundled_dir

    path = bundled_dir() / "contract-suite" / "post-v1-chat-completions-022.json"
    overflow = json.loads(path.read_text())["request"]["body"]
    assert _post(fake_llama_server, overflow).status_code == 400  # the very request: replayed
    shorter = dict(overflow, messages=[{"role": "user", "content": "word0 word1"}])
    assert _post(fake_llama_server, shorter).status_code == 200


# -- tier (b): llama-server's own validation ----------------------------------------------

REFUSED = [
    ({"messages": HELLO, "add_generation_prompt": True, "continue_final_message": True}, 400,
     "invalid_request_error",
     "Cannot set both add_generation_prompt and continue_final_message to true."),
    ({"messages": HELLO, "response_format": {"type": "sound"}}, 400, "invalid_request_error",
     'response_format type must be one of "text" or "json_object", but got: sound'),
    ({"messages": HELLO, "response_format": {"type": "json_schema",
                                             "json_schema": {"schema": {"type": 123}}}},
     400, "invalid_request_error", "Unable to generate parser for this template. Automatic "
     "parser generation failed: JSON schema error at #: type must be a string or an array of "
     "strings"),
    ({"messages": HELLO, "json_schema": {"type": "hiccup"}}, 400, "invalid_request_error",
     "Unable to generate parser for this template. Automatic parser generation failed: JSON "
     "schema error at #: unrecognized type hiccup"),
    ({"messages": [{"role": "user", "content": 5}]}, 400, "invalid_request_error",
     "Expected 'content' to be a string or an array"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
     500, "server_error", "image input is not supported - hint: if this is unexpected, you "
     "may need to provide the mmproj"),
    ({"messages": [{"role": "user", "content": [{"type": "weird"}]}]}, 400,
     "invalid_request_error", "unsupported content[].type"),
    ({"messages": HELLO, "max_tokens": "3"}, 400, "invalid_request_error",
     "Field 'max_tokens': [json.exception.type_error.302] type must be number, but is string"),
    ({"messages": HELLO, "json_schema": {"type": "object"}, "grammar": "root ::= \"a\""}, 500,
     "server_error", "Cannot use both json_schema and grammar"),
    ({"messages": HELLO, "top_logprobs": 2}, 400, "invalid_request_error",
     "top_logprobs requires logprobs to be set to true"),
    ({"messages": [{"role": "assistant"}]}, 400, "invalid_request_error",
     "Assistant message must contain either 'content' or 'tool_calls'!"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "assistant", "content": "c"}]}, 400, "invalid_request_error",
     "Cannot have 2 or more assistant messages at the end of the list."),
    ([1, 2], 400, "invalid_request_error", "'messages' is required"),
    ({"messages": HELLO, "n": 5}, 400, "invalid_request_error",
     "Field 'n': Value must be between 1 <= value <= 4, but got 5"),
    ({"messages": HELLO, "stop": [False]}, 400, "invalid_request_error",
     "Field 'stop': [json.exception.type_error.302] type must be string, but is boolean"),
    ({"messages": [{"content": "x"}]}, 500, "server_error",
     "Failed to parse messages: Missing 'role' in message: {\"content\":\"x\"}"),
]


@pytest.mark.parametrize(("body", "status", "kind", "message"), REFUSED)
def test_an_invalid_request_gets_llama_servers_status_type_and_message(
        fake_llama_server: FakeServer, body: Any, status: int, kind: str, message: str) -> None:
    reply = _post(fake_llama_server, body)
    assert reply.json() == {"error": {"code": status, "message": message, "type": kind}}
    assert (reply.status_code, reply.headers["X-Fakellama-Match"]) == (status, "validation")


@pytest.mark.parametrize(("raw", "message"), [
    (b"{not json", "parse error at line 1, column 3: syntax error while parsing object key - "
                   "invalid literal; last read: '{no'; expected string literal"),
    (b"", "parse error at line 1, column 1: attempting to parse an empty input; check that "
          "your input string or stream contains the expected JSON"),
    (b'{"messages": [', "parse error at line 1, column 15: syntax error while parsing value - "
                        "unexpected end of input; expected '[', '{', or a literal"),
    (b'{"a":"\\u12"}', "parse error at line 1, column 11: syntax error while parsing value - "
                       "invalid string: '\\u' must be followed by 4 hex digits; last read: "
                       "'\"\\u12\"'"),
])
def test_a_body_that_is_not_json_gets_the_json_parsers_own_words(
        fake_llama_server: FakeServer, raw: bytes, message: str) -> None:
    reply = requests.post(fake_llama_server.url + CHAT, data=raw, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "[json.exception.parse_error.101] " + message


def test_the_recorded_bad_json_error_is_what_the_fake_says() -> None:
    recorded = json.loads((bundled_errors_dir() / "error-bad-json.json").read_text())
    with FakeServer() as fake:
        reply = requests.post(fake.url + CHAT, data=recorded["request"]["body"].encode(),
                              timeout=10)
    assert reply.json() == recorded["response"]["body"]


def bundled_errors_dir() -> Any:
    """The directory of llama-server's recorded error exchanges."""
    from fakellama.fixtures import bundled_dir

    return bundled_dir("llamacpp_errors")


# -- tier (c): synthesized replies ----------------------------------------------------------


def test_a_synthesized_reply_counts_usage_and_honours_stop_and_n(
        fake_llama_server: FakeServer) -> None:
    body = {"messages": [{"role": "user", "content": "Tell me a joke"}], "n": 2,
            "stop": ["a joke"]}
    reply = _post(fake_llama_server, body).json()
    assert [c["index"] for c in reply["choices"]] == [0, 1]
    assert {c["message"]["content"] for c in reply["choices"]} == {"fakellama: Tell me "}
    assert reply["choices"][0]["finish_reason"] == "stop"
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0
    assert reply["timings"]["predicted_n"] == usage["completion_tokens"]


def test_a_json_schema_request_gets_an_instance_that_validates(
        fake_llama_server: FakeServer) -> None:
    schema = {"type": "object", "required": ["name", "tags", "age", "kind"],
              "properties": {"name": {"type": "string", "minLength": 12},
                             "tags": {"type": "array", "items": {"type": "string"},
                                      "minItems": 2},
                             "age": {"type": "integer", "minimum": 18, "maximum": 99},
                             "kind": {"enum": ["cat", "dog"]}}}
    body = {"messages": HELLO, "response_format": {"type": "json_schema",
                                                   "json_schema": {"schema": schema}}}
    reply = _post(fake_llama_server, body)
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    jsonschema.validate(json.loads(reply.json()["choices"][0]["message"]["content"]), schema)


@pytest.mark.parametrize("tool_choice", ["required",
                                         {"type": "function", "function": {"name": "lookup"}}])
def test_a_forced_tool_choice_gets_a_call_whose_arguments_validate(
        fake_llama_server: FakeServer, tool_choice: Any) -> None:
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "required": ["id", "exact"],
        "properties": {"id": {"type": "integer", "minimum": 7}, "exact": {"type": "boolean"}}}}}
    body = {"messages": HELLO, "tools": [WEATHER_TOOL, lookup], "tool_choice": tool_choice}
    choice = _post(fake_llama_server, body).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    expected = lookup if isinstance(tool_choice, dict) else WEATHER_TOOL
    assert call["function"]["name"] == expected["function"]["name"]
    jsonschema.validate(json.loads(call["function"]["arguments"]),
                        expected["function"]["parameters"])


def test_a_synthesized_stream_is_one_chunk_per_token_with_usage_when_asked(
        fake_llama_server: FakeServer) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True,
            "stream_options": {"include_usage": True}, "max_tokens": 5}
    reply = _post(fake_llama_server, body)
    assert reply.headers["X-Accel-Buffering"] == "no"
    events = _events(reply)
    assert events[-1] == "[DONE]"
    pieces = [e["choices"][0]["delta"].get("content") for e in events[1:-3]]
    assert pieces == list("fakel")
    assert events[-3]["choices"][0]["finish_reason"] == "length"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 5
    assert len({e["id"] for e in events[:-1]}) == 1


def test_logprobs_come_one_entry_per_token(fake_llama_server: FakeServer) -> None:
    body = {"messages": HELLO, "logprobs": True, "max_tokens": 4}
    choice = _post(fake_llama_server, body).json()["choices"][0]
    assert [t["token"] for t in choice["logprobs"]["content"]] == list("fake")


def test_completion_endpoints_are_synthesized(fake_llama_server: FakeServer) -> None:
    native = _post(fake_llama_server, {"prompt": "Once", "n_predict": 4}, "/completion").json()
    assert (native["content"], native["stop_type"], native["tokens_predicted"]) == (
        "fake", "limit", 4)
    oai = _post(fake_llama_server, {"prompt": "Once", "max_tokens": 4}, "/v1/completions").json()
    assert oai["object"] == "text_completion"
    assert oai["choices"][0]["text"] == "fake"
    assert oai["choices"][0]["finish_reason"] == "length"


def test_the_anthropic_and_responses_apis_are_answered_in_their_own_shapes(
        fake_llama_server: FakeServer) -> None:
    ask = {"model": "m", "max_tokens": 4, "system": "Be brief.",
           "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    message = _post(fake_llama_server, ask, "/v1/messages").json()
    assert (message["type"], message["stop_reason"], message["content"]) == (
        "message", "max_tokens", [{"type": "text", "text": "fake"}])
    assert message["usage"]["output_tokens"] == 4
    counted = _post(fake_llama_server, ask, "/v1/messages/count_tokens").json()
    assert counted == {"input_tokens": message["usage"]["input_tokens"]}
    response = _post(fake_llama_server, {"input": "Hi"}, "/v1/responses").json()
    assert response["object"] == "response" and response["id"].startswith("resp_")
    assert response["output"][0]["content"][0]["text"] == "fakellama: Hi"
    missing = _post(fake_llama_server, {}, "/v1/messages")
    assert (missing.status_code, missing.json()["error"]["message"]) == (
        500, "'messages' is required")
    wrong = _post(fake_llama_server, {"input": 5}, "/v1/responses")
    assert wrong.json()["error"]["message"] == "'input' must be a string or array of objects"


def test_a_grammar_no_fixture_covers_is_refused_by_name_not_answered(
        fake_llama_server: FakeServer) -> None:
    reply = _post(fake_llama_server, {"messages": HELLO, "grammar": "root ::= \"yes\""})
    assert (reply.status_code, reply.headers["X-Fakellama-Match"]) == (400, "none")
    assert "GBNF grammar" in reply.json()["error"]["message"]


@pytest.mark.fake_llama(strict=True)
def test_strict_mode_refuses_validation_and_synthesis_and_says_what_llama_server_would(
        fake_llama_server: FakeServer) -> None:
    synthesized = _post(fake_llama_server, {"messages": [{"role": "user", "content": "Joke?"}]})
    assert (synthesized.status_code, synthesized.headers["X-Fakellama-Match"]) == (400, "none")
    refused = _post(fake_llama_server, {"messages": [{"role": "user"}]})
    assert refused.headers["X-Fakellama-Match"] == "none"
    assert "llama-server would answer 400 invalid_request_error: All non-assistant messages " \
           "must contain 'content'" in refused.json()["error"]["message"]


# -- routes and headers ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "status", "kind"), [
    ("POST", "/v1/embeddings", 501, "not_supported_error"),
    ("POST", "/embedding", 501, "not_supported_error"),
    ("POST", "/rerank", 501, "not_supported_error"),
    ("POST", "/infill", 501, "not_supported_error"),
    ("GET", "/cors-proxy", 403, "feature_disabled"),
    ("GET", "/", 404, "not_found_error"),
    ("GET", "/api/tags", 404, "not_found_error"),
])
def test_routes_llama_server_refuses_are_refused_the_same_way(
        fake_llama_server: FakeServer, method: str, path: str, status: int, kind: str) -> None:
    reply = requests.request(method, fake_llama_server.url + path, json={}, timeout=10)
    assert (reply.status_code, reply.json()["error"]["type"]) == (status, kind)
    assert reply.headers["Connection"] == "close"


def test_slots_lora_adapters_and_token_counts(fake_llama_server: FakeServer) -> None:
    assert requests.get(fake_llama_server.url + "/lora-adapters", timeout=10).json() == []
    slots = requests.get(fake_llama_server.url + "/slots", timeout=10).json()
    assert slots[0]["id"] == 0 and slots[0]["is_processing"] is False
    ask = [{"role": "user", "content": "Count me."}]
    counted = _post(fake_llama_server, {"messages": ask}, "/v1/chat/completions/input_tokens")
    chat = _post(fake_llama_server, {"messages": ask}).json()
    assert counted.json() == {"input_tokens": chat["usage"]["prompt_tokens"],
                              "object": "response.input_tokens"}


@pytest.mark.fake_llama(api_key="k")
def test_a_cors_preflight_needs_no_key_and_every_reply_echoes_the_origin(
        fake_llama_server: FakeServer) -> None:
    origin = {"Origin": "http://app.example"}
    preflight = requests.options(fake_llama_server.url + CHAT, headers=origin, timeout=10)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE, OPTIONS"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    refused = requests.get(fake_llama_server.url + "/props", headers=origin, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert refused.headers["Connection"] == "close"


def test_a_4xx_closes_the_connection_and_a_200_keeps_it(fake_llama_server: FakeServer) -> None:
    with requests.Session() as session:
        ok = session.get(fake_llama_server.url + "/health", timeout=10)
        assert "Connection" not in ok.headers and "Keep-Alive" in ok.headers
        missing = session.get(fake_llama_server.url + "/no/such", timeout=10)
        assert missing.headers["Connection"] == "close"


# -- any request: an answer, never a crash ---------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=12)
FIELDS = st.sampled_from(["messages", "tools", "tool_choice", "stream", "stream_options",
                          "max_tokens", "n", "stop", "response_format", "json_schema",
                          "grammar", "logprobs", "top_logprobs", "continue_final_message",
                          "add_generation_prompt", "temperature", "prompt", "content",
                          "tokens", "model", "input", "system", "instructions",
                          "max_output_tokens", "stop_sequences"])
MESSAGE = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["user", "assistant", "system", "tool", 3]),
    "content": JSON | st.text(max_size=12), "tool_calls": JSON})
BODY = st.dictionaries(FIELDS, JSON, max_size=5) | st.builds(
    lambda messages, extra: {"messages": messages, **extra},
    st.lists(MESSAGE, max_size=3), st.dictionaries(FIELDS, JSON, max_size=3))
PATHS = st.sampled_from(["/v1/chat/completions", "/completion", "/v1/completions",
                         "/tokenize", "/detokenize", "/apply-template",
                         "/v1/chat/completions/input_tokens", "/v1/messages",
                         "/v1/messages/count_tokens", "/v1/responses"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS, body=BODY)
def test_any_json_body_gets_an_answer_the_fake_can_label_and_never_an_app_error(
        fake_llama_server: FakeServer, path: str, body: Any) -> None:
    reply = requests.post(fake_llama_server.url + path, json=body, timeout=10)
    fake_llama_server.check()  # the fake raised nothing while answering
    assert reply.status_code in (200, 400, 500)
    assert reply.headers["X-Fakellama-Match"] in ("exact", "sampling", "conversation",
                                                  "validation", "builtin", "synthesized", "none")
    if reply.status_code >= 400:
        assert reply.headers["Connection"] == "close"
        assert set(reply.json()["error"]) == {"code", "message", "type"}


def test_head_is_get_without_a_body(fake_llama_server: FakeServer) -> None:
    reply = requests.head(fake_llama_server.url + "/health", timeout=10)
    assert (reply.status_code, reply.content) == (200, b"")
    assert reply.headers["Content-Length"] == "15"  # the GET body's length: {"status":"ok"}


def test_ignore_eos_runs_to_max_tokens_not_the_recorded_end(
        fake_llama_server: FakeServer) -> None:
    recorded = _post(fake_llama_server, {"messages": HELLO}).json()
    assert recorded["choices"][0]["finish_reason"] == "stop"
    reply = _post(fake_llama_server, {"messages": HELLO, "max_tokens": 300, "ignore_eos": True})
    body = reply.json()
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 300


def test_ignore_eos_without_a_limit_stops_at_the_end_of_the_context() -> None:
    with FakeServer(ctx_size=512) as server:
        body = _post(server, {"messages": HELLO, "ignore_eos": True}).json()
    usage = body["usage"]
    assert body["choices"][0]["finish_reason"] == "length"
    assert usage["prompt_tokens"] + usage["completion_tokens"] == 512


def test_slots_show_a_stream_in_progress_until_the_client_leaves() -> None:
    def busy(server: FakeServer) -> list[bool]:
        return [s["is_processing"] for s in requests.get(server.url + "/slots").json()]

    # Paced at 200 tokens a second, 2,000 tokens take ten: still sending when checked.
    with FakeServer(faults="tokens_per_second=200") as server:
        assert not any(busy(server))
        with requests.post(server.url + "/v1/chat/completions", stream=True, json={
                "messages": HELLO, "max_tokens": 2000, "ignore_eos": True, "stream": True,
        }) as reply:
            next(reply.iter_lines())
            assert busy(server).count(True) == 1
        for _ in range(100):
            if not any(busy(server)):
                break
            time.sleep(0.01)
        assert not any(busy(server))
