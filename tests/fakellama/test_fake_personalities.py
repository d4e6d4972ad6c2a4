"""Other servers' faces: Ollama, vLLM and LM Studio, each in the versions the fake emulates.

Every expected body here is the one the server's own source (or, for LM Studio, its docs
and bug tracker) shows; the rule's source is named in fakellama/personalities.py and in
the reply's X-Fakellama-Source header.
"""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
import requests
from fake_helpers import WEATHER_TOOL, bundled

from fakellama.personalities import SOURCE_HEADER, all_versions, personality
from fakellama.server import FakeServer

MODEL = "scripted-tiny.gguf"
HELLO = [{"role": "user", "content": "What is the weather in Paris?"}]
ASK = {"model": MODEL, "messages": HELLO, "tools": [WEATHER_TOOL]}
OLLAMA = ["ollama@0.12", "ollama@0.32"]
VLLM = ["vllm@0.10", "vllm@0.33"]
LMSTUDIO = ["lmstudio@0.3", "lmstudio@0.4"]


def _chunks(text: str) -> list[dict[str, Any]]:
    return [json.loads(b[6:]) for b in text.split("\n\n") if b and b != "data: [DONE]"]


# -- versions ------------------------------------------------------------------------------


def test_every_emulated_version_is_listed_and_a_bare_name_is_the_newest() -> None:
    assert all_versions() == ["llamacpp", *OLLAMA, *VLLM, *LMSTUDIO]
    assert personality("ollama").spec == "ollama@0.32"
    assert personality("vllm@current").spec == "vllm@0.33"
    assert personality("vllm@0.10.0").spec == "vllm@0.10"


@pytest.mark.parametrize(("spec", "words"), [
    ("tgi", "llamacpp, ollama, vllm, lmstudio"),
    ("vllm@0.9", "emulates versions 0.10, 0.33"),
    ("llamacpp@1.0", "emulates one version"),
])
def test_an_unknown_personality_or_version_names_the_choices(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        personality(spec)


def test_an_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="no option 'tools'.*tool_parser"):
        personality("vllm", {"tools": "off"})


@pytest.mark.parametrize("spec", ["ollama@0.12", "lmstudio@0.3"])
def test_a_server_without_api_keys_refuses_to_be_given_one(spec: str) -> None:
    with pytest.raises(ValueError, match="cannot require an API key"):
        FakeServer(personality=spec, api_key="k")


# -- Ollama ----------------------------------------------------------------------------------


@pytest.mark.fake_llama(personality="ollama", ctx_size=8192)
def test_ollama_root_version_tags_ps_and_show(fake_llama_server: FakeServer) -> None:
    url = fake_llama_server.url
    assert requests.get(url + "/").text == "Ollama is running"
    assert requests.get(url + "/api/version").json() == {"version": "0.32.15"}
    assert requests.get(url + "/api/tags").json()["models"][0]["name"] == MODEL
    assert requests.get(url + "/api/ps").json()["models"][0]["context_length"] == 8192
    show = requests.post(url + "/api/show", json={"model": MODEL}).json()
    assert show["model_info"]["llama.context_length"] == 8192


@pytest.mark.parametrize("spec", OLLAMA)
def test_ollama_show_refuses_an_unknown_or_missing_model(spec: str) -> None:
    with FakeServer(personality=spec) as fake:
        unknown = requests.post(fake.url + "/api/show", json={"model": "nope"})
        missing = requests.post(fake.url + "/api/show", json={})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "model 'nope' not found"})
    assert (missing.status_code, missing.json()) == (400, {"error": "model is required"})


@pytest.mark.parametrize(("spec", "kind"), [("ollama@0.12", "api_error"),
                                            ("ollama@0.32", "not_found_error")])
def test_ollama_v1_unknown_model_is_404_typed_per_version(spec: str, kind: str) -> None:
    with FakeServer(personality=spec) as fake:
        chat = requests.post(fake.url + "/v1/chat/completions",
                             json={"model": "nope", "messages": HELLO})
        one = requests.get(fake.url + "/v1/models/nope")
        found = requests.get(fake.url + f"/v1/models/{MODEL}")
    expected = {"error": {"message": "model 'nope' not found", "type": kind,
                          "param": None, "code": None}}
    assert (chat.status_code, chat.json()) == (404, expected)
    assert (one.status_code, one.json()) == (404, expected)
    assert found.json()["id"] == MODEL and found.json()["owned_by"] == "library"
    assert "github:ollama/ollama@v0.1" in chat.headers.get(SOURCE_HEADER, "") or \
        "github:ollama/ollama@v0.3" in chat.headers.get(SOURCE_HEADER, "")


@pytest.mark.parametrize("spec", OLLAMA)
def test_ollama_empty_messages_is_its_own_400_not_a_llama_fixture(spec: str) -> None:
    with FakeServer(personality=spec) as fake:
        reply = requests.post(fake.url + "/v1/chat/completions",
                              json={"model": MODEL, "messages": []})
    assert reply.status_code == 400
    assert reply.json() == {"error": {"message": "[] is too short - 'messages'",
                                      "type": "invalid_request_error", "param": None,
                                      "code": None}}


@pytest.mark.parametrize("spec", OLLAMA)
def test_ollama_streams_each_tool_call_whole_with_its_index(spec: str) -> None:
    with FakeServer(personality=spec, ctx_size=8192) as fake:
        text = requests.post(fake.url + "/v1/chat/completions",
                             json=dict(ASK, stream=True)).text
        whole = requests.post(fake.url + "/v1/chat/completions", json=ASK).json()
    chunks = _chunks(text)
    calls = [c for ch in chunks for choice in ch["choices"]
             for c in choice["delta"].get("tool_calls") or []]
    assert len(calls) == 1 and calls[0]["index"] == 0
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert all("timings" not in ch for ch in chunks)
    assert whole["choices"][0]["message"]["tool_calls"][0]["index"] == 0


def test_ollama_tool_call_stream_works_with_openai_s_stream_helper() -> None:
    with FakeServer(personality="ollama", ctx_size=8192) as fake:
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="unused", max_retries=0)
        with client.chat.completions.stream(model=MODEL, messages=HELLO,
                                            tools=[WEATHER_TOOL]) as stream:
            final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"


def test_ollama_renames_reasoning_content() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": "x",
                                     "reasoning_content": "think"}}]}
    adapted = personality("ollama").adapt_body(body)
    assert adapted["choices"][0]["message"] == {"role": "assistant", "content": "x",
                                                "reasoning": "think"}


@pytest.mark.fake_llama(personality="ollama", ctx_size=8192)
def test_ollama_unknown_route_is_gos_404(fake_llama_server: FakeServer) -> None:
    reply = requests.get(fake_llama_server.url + "/props")
    assert (reply.status_code, reply.text) == (404, "404 page not found")


@pytest.mark.parametrize("spec", OLLAMA)
def test_ollama_truncates_an_over_long_prompt_and_answers(spec: str) -> None:
    with FakeServer(personality=spec, ctx_size=64) as fake:
        reply = requests.post(fake.url + "/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "word " * 500}]})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]


def test_current_ollama_with_context_shift_off_refuses_an_over_long_prompt() -> None:
    with FakeServer(personality="ollama@0.32", personality_options={"context_shift": "off"},
                    ctx_size=64) as fake:
        reply = requests.post(fake.url + "/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "word " * 500}]})
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith(
        "the prompt is longer than the context length currently available to the model")
    assert "llm/llama_server.go" in reply.headers[SOURCE_HEADER]


@pytest.mark.parametrize("spec", OLLAMA)
def test_ollama_loading_holds_the_request_then_answers(spec: str) -> None:
    with FakeServer(personality=spec) as fake:
        fake.set_faults("loading=0.6")
        assert requests.get(fake.url + "/").text == "Ollama is running"
        assert requests.get(fake.url + "/api/ps").json() == {"models": []}
        started = time.monotonic()
        reply = requests.post(fake.url + "/v1/chat/completions",
                              json={"model": MODEL, "messages": HELLO})
        waited = time.monotonic() - started
        assert requests.get(fake.url + "/api/ps").json()["models"]
    assert reply.status_code == 200 and waited >= 0.4


# -- vLLM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "version"), [("vllm@0.10", "0.10.0"), ("vllm@0.33", "0.33.0")])
def test_vllm_health_version_and_max_model_len(spec: str, version: str) -> None:
    with FakeServer(personality=spec, ctx_size=2048) as server:
        health = requests.get(server.url + "/health")
        assert (health.status_code, health.content) == (200, b"")
        assert requests.get(server.url + "/version").json() == {"version": version}
        model = requests.get(server.url + "/v1/models").json()["data"][0]
        assert model["max_model_len"] == 2048
        missing = requests.get(server.url + "/props")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
        wrong = requests.get(server.url + "/v1/chat/completions")
        assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})
        chat = requests.post(server.url + "/v1/chat/completions", json=ASK).json()
        assert "timings" not in chat


def test_vllm_unknown_model_in_each_envelope() -> None:
    body = {"model": "x", "messages": HELLO}
    with FakeServer(personality="vllm@0.10") as old, FakeServer(personality="vllm@0.33") as new:
        flat = requests.post(old.url + "/v1/chat/completions", json=body)
        nested = requests.post(new.url + "/v1/chat/completions", json=body)
    assert (flat.status_code, flat.json()) == (404, {
        "object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError",
        "param": None, "code": 404})
    assert (nested.status_code, nested.json()) == (404, {"error": {
        "message": f"The model `x` does not exist. Valid aliases: {MODEL}.",
        "type": "NotFoundError", "param": "model", "code": 404}})


def test_vllm_0_10_refuses_prompt_plus_max_tokens_over_max_model_len() -> None:
    with FakeServer(personality="vllm@0.10", ctx_size=64) as fake:
        reply = requests.post(fake.url + "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100})
    message = reply.json()["message"]
    assert reply.status_code == 400 and reply.json()["type"] == "BadRequestError"
    assert message.startswith("This model's maximum context length is 64 tokens. However, you "
                              "requested ")
    assert message.endswith("in the completion). Please reduce the length of the messages or "
                            "completion. None")


def test_vllm_current_clamps_max_tokens_and_refuses_only_a_prompt_over_the_length() -> None:
    with FakeServer(personality="vllm@0.33", ctx_size=64) as fake:
        fits = requests.post(fake.url + "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100})
        long = requests.post(fake.url + "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "word " * 500}]})
    assert fits.status_code == 200
    error = long.json()["error"]
    assert long.status_code == 400 and error["param"] == "input_tokens"
    assert error["message"] == (
        "This model's maximum context length is 64 tokens. However, your prompt contains at "
        "least 65 input tokens, which exceeds this limit even without any output tokens. "
        "Please reduce the length of the input prompt. (parameter=input_tokens, value=65)")


@pytest.mark.parametrize("spec", VLLM)
def test_vllm_refuses_a_body_not_sent_as_json(spec: str) -> None:
    with FakeServer(personality=spec) as fake:
        reply = requests.post(fake.url + "/v1/chat/completions", data=json.dumps(ASK),
                              headers={"Content-Type": "text/plain"})
    assert reply.status_code == 400
    text = json.dumps(reply.json())
    assert "Unsupported Media Type: Only 'application/json' is allowed" in text
    assert "Bad Request" in text


def test_vllm_bad_json_is_fastapi_s_json_invalid_in_each_version() -> None:
    with FakeServer(personality="vllm@0.10") as old, FakeServer(personality="vllm@0.33") as new:
        flat = requests.post(old.url + "/v1/chat/completions", data=b"{not json",
                             headers={"Content-Type": "application/json"}).json()
        nested = requests.post(new.url + "/v1/chat/completions", data=b"{not json",
                               headers={"Content-Type": "application/json"}).json()["error"]
    assert flat["message"] == (
        "[{'type': 'json_invalid', 'loc': ('body', 1), 'msg': 'JSON decode error', 'input': {}, "
        "'ctx': {'error': 'Expecting property name enclosed in double quotes'}}]")
    assert nested["message"] == (
        "1 validation error:\n  {'type': 'json_invalid', 'loc': 'body.1', 'msg': 'JSON decode "
        "error', 'input': '<dict of 0 items>', 'ctx': {'error': 'Expecting property name "
        "enclosed in double quotes'}}")
    assert (nested["param"], nested["type"]) == ("body.1", "Bad Request")


def test_vllm_stream_options_without_stream() -> None:
    body = {"messages": HELLO, "stream_options": {"include_usage": True}}
    with FakeServer(personality="vllm@0.10") as old, FakeServer(personality="vllm@0.33") as new:
        flat = requests.post(old.url + "/v1/chat/completions", json=body)
        nested = requests.post(new.url + "/v1/chat/completions", json=body)
    assert flat.status_code == nested.status_code == 400
    assert "Value error, Stream options can only be defined when `stream=True`." in \
        flat.json()["message"]
    assert nested.json()["error"] == {
        "message": "Stream options can only be defined when `stream=True`. "
                   "(parameter=stream_options)",
        "type": "BadRequestError", "param": "stream_options", "code": 400}


@pytest.mark.parametrize("spec", VLLM)
def test_vllm_without_a_tool_parser_refuses_auto_tools(spec: str) -> None:
    with FakeServer(personality=spec, personality_options={"tool_parser": ""}) as fake:
        reply = requests.post(fake.url + "/v1/chat/completions",
                              json={"messages": HELLO, "tools": [WEATHER_TOOL]})
        plain = requests.post(fake.url + "/v1/chat/completions", json={"messages": HELLO})
    assert reply.status_code == 400 and plain.status_code == 200
    body = reply.json()
    message = body["message"] if spec == "vllm@0.10" else body["error"]["message"]
    assert message == ('"auto" tool choice requires --enable-auto-tool-choice and '
                       "--tool-call-parser to be set")


@pytest.mark.parametrize("spec", VLLM)
def test_vllm_key_only_as_bearer_and_only_on_v1(spec: str) -> None:
    with FakeServer(personality=spec, api_key="k") as fake:
        url = fake.url + "/v1/chat/completions"
        bearer = requests.post(url, json={"messages": HELLO}, headers={"Authorization": "Bearer k"})
        x_api = requests.post(url, json={"messages": HELLO}, headers={"X-Api-Key": "k"})
        tokenize = requests.post(fake.url + "/tokenize", json={"prompt": "hi"})
    assert bearer.status_code == 200
    assert (x_api.status_code, x_api.json()) == (401, {"error": "Unauthorized"})
    assert tokenize.status_code == 200


@pytest.mark.parametrize("spec", VLLM)
def test_vllm_loading_is_no_listener_not_a_503(spec: str) -> None:
    with FakeServer(personality=spec) as fake:
        fake.set_faults("loading=30")
        with pytest.raises(requests.ConnectionError):
            requests.get(fake.url + "/health")


# -- LM Studio -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", LMSTUDIO)
def test_lmstudio_unknown_route_is_200_with_an_error(spec: str) -> None:
    with FakeServer(personality=spec) as fake:
        reply = requests.post(fake.url + "/x", json={})
    assert reply.status_code == 200
    assert reply.json() == {"error": "Unexpected endpoint or method. (POST /x)"}
    assert "lmstudio-bug-tracker" in reply.headers[SOURCE_HEADER]


@pytest.mark.parametrize("spec", LMSTUDIO)
def test_lmstudio_v0_lists_every_model_with_state_and_maximum_context(spec: str) -> None:
    with FakeServer(personality=spec, ctx_size=4096) as server:
        models = requests.get(server.url + "/api/v0/models").json()["data"]
        one = requests.get(server.url + f"/api/v0/models/{MODEL}").json()
        assert requests.post(server.url + "/v1/chat/completions", json=ASK).status_code == 200
    states = {m["id"]: (m["type"], m["state"]) for m in models}
    assert states[MODEL] == ("llm", "loaded")
    assert ("embeddings", "not-loaded") in states.values()
    assert ("llm", "not-loaded") in states.values()
    assert all("loaded_context_length" not in m for m in models)
    assert (one["id"], one["max_context_length"]) == (MODEL, 4096)


@pytest.mark.parametrize(("spec", "start"), [
    ("lmstudio@0.3", "Trying to keep the first "),
    ("lmstudio@0.4", "The number of tokens to keep from the initial prompt is greater than "
                     "the context length (n_keep: "),
])
def test_lmstudio_overflow_in_each_version_s_words(spec: str, start: str) -> None:
    with FakeServer(personality=spec, ctx_size=64) as fake:
        reply = requests.post(fake.url + "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "word " * 500}]})
    assert reply.status_code == 400
    assert set(reply.json()) == {"error"} and reply.json()["error"].startswith(start)


def test_lmstudio_0_4_api_tokens() -> None:
    with FakeServer(personality="lmstudio@0.4", api_key="sk-lm-secret") as fake:
        url = fake.url + "/v1/chat/completions"
        none = requests.post(url, json={"messages": HELLO})
        wrong = requests.post(url, json={"messages": HELLO},
                              headers={"Authorization": "Bearer sk-lm-wrong-token"})
        right = requests.post(url, json={"messages": HELLO},
                              headers={"Authorization": "Bearer sk-lm-secret"})
    assert none.status_code == wrong.status_code == 401
    assert none.json()["error"]["code"] == "invalid_api_key"
    assert none.json()["error"]["message"].startswith("An LM Studio API token is required")
    assert wrong.json()["error"]["message"].startswith(
        "Malformed LM Studio API token provided: sk-lm-wron...")
    assert right.status_code == 200


def test_lmstudio_loading_holds_the_request_and_lists_the_model_not_loaded() -> None:
    with FakeServer(personality="lmstudio") as fake:
        fake.set_faults("loading=0.6")
        states = {m["id"]: m["state"] for m in
                  requests.get(fake.url + "/api/v0/models").json()["data"]}
        started = time.monotonic()
        reply = requests.post(fake.url + "/v1/chat/completions", json={"messages": HELLO})
        waited = time.monotonic() - started
    assert states[MODEL] == "not-loaded"
    assert reply.status_code == 200 and waited >= 0.4


# -- no llama.cpp error leaks into another server ------------------------------------------


@pytest.mark.parametrize("spec", all_versions()[1:])
def test_llama_server_error_fixtures_never_answer_another_server(spec: str) -> None:
    # Recorded from llama-server: its 400 for an over-long prompt and for a bad body.
    names = ["post-v1-chat-completions-022", "post-v1-chat-completions-024"]
    bodies = [bundled(f"contract-suite/{name}")["request"]["body"] for name in names]
    with FakeServer(personality=spec, ctx_size=1_000_000) as fake:
        replies = [requests.post(fake.url + "/v1/chat/completions", json=body)
                   for body in bodies]
    for reply in replies:
        assert "X-Fakellama-Fixture" not in reply.headers, reply.text[:200]
        assert "exceed_context_size_error" not in reply.text
        assert '"code":400,"message"' not in reply.text  # llama-server's envelope


@pytest.mark.parametrize("spec", VLLM)
def test_vllm_applies_the_grammar_field_its_version_reads(spec: str) -> None:
    from contracts.sample_requests import grammar
    from pedrollm.factory import new_backend

    with FakeServer(personality=spec) as fake, \
            new_backend({"type": "vllm", "server_url": fake.url, "max_retries": 0}) as backend:
        body = backend.chat_body(grammar())
        held = requests.post(fake.url + "/v1/chat/completions", json=body).json()
        kept = fake.requests[-1].body
        rules = body.pop("guided_grammar", None) or body.pop("structured_outputs")["grammar"]
        other = ({"structured_outputs": {"grammar": rules}} if spec == "vllm@0.10"
                 else {"guided_grammar": rules})
        free = requests.post(fake.url + "/v1/chat/completions", json={**body, **other}).json()
    assert held["choices"][0]["message"]["content"].strip() in ("yes", "no")
    assert free["choices"][0]["message"]["content"].strip() not in ("yes", "no")
    assert ("guided_grammar" if spec == "vllm@0.10" else "structured_outputs") in kept
