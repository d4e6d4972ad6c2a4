"""Each backend against a stand-in of its server's discovery and readiness endpoints.

The stand-in bodies are written here from the servers' documented shapes.
"""

from __future__ import annotations

import json
import warnings

import pytest
import requests
from pytest_httpserver import HTTPServer

from pedrollm.backends import LlamaCppBackend, LMStudioBackend, OllamaBackend, VLLMBackend
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.errors import (
    ConfigError,
    ModelLoading,
    NotFound,
    ToolsNotEnabled,
    UnsupportedFeature,
)
from pedrollm.types import InferenceRequest, ToolDefinition

from .sse import chunk, completion, sse

LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
PROPS = {
    "default_generation_settings": {"n_ctx": 4096, "params": {"temperature": 0.8}},
    "total_slots": 1,
    "model_path": "/models/qwen2.5-7b-instruct.gguf",
    "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n<tool_call>{% endfor %}",
    "chat_template_caps": {"supports_tools": True, "supports_tool_calls": True},
    "build_info": "b6000-abcdef0",
}
TOOL = ToolDefinition("get_weather", "", {"type": "object", "properties": {}})


def test_llamacpp_discovers_context_template_and_version(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/props").respond_with_json(PROPS)
    b = LlamaCppBackend(httpserver.url_for("/"))
    assert b.get_context_window() == 4096
    assert b.get_usable_context() == 3072
    assert b.supports_native_tools() is True
    info = b.server_info()
    # Named as /v1/models names it: the path given to -m, when there is no --alias.
    assert info.version == "b6000-abcdef0" and info.model == "/models/qwen2.5-7b-instruct.gguf"
    assert len([r for r, _ in httpserver.log if r.path == "/props"]) == 1  # fetched once


def test_llamacpp_server_info_names_the_model_by_its_alias(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/props").respond_with_json({**PROPS, "model_alias": "qwen"})
    assert LlamaCppBackend(httpserver.url_for("/")).server_info().model == "qwen"


def test_llamacpp_falls_back_to_models_meta(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/props").respond_with_json({"error": {
        "code": 404, "message": "File Not Found", "type": "not_found_error"}}, status=404)
    httpserver.expect_request("/v1/models").respond_with_json({"object": "list", "data": [
        {"id": "m.gguf", "object": "model", "owned_by": "llamacpp", "meta": {"n_ctx": 2048}}]})
    assert LlamaCppBackend(httpserver.url_for("/")).get_context_window() == 2048


def test_llamacpp_sends_native_extras(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion('{"a": 1}'))
    b = LlamaCppBackend(httpserver.url_for("/"), temperature=0.3, max_tokens=50)
    b.infer(InferenceRequest(user_prompt="x", json_schema={"type": "object"}, top_k=5,
                             min_p=0.1, repeat_penalty=1.1, n_probs=2))
    body = json.loads(httpserver.log[-1][0].get_data())
    assert body["json_schema"] == {"type": "object"} and "response_format" not in body
    assert (body["top_k"], body["min_p"], body["repeat_penalty"], body["n_probs"]) == (
        5, 0.1, 1.1, 2)
    assert (body["temperature"], body["max_tokens"]) == (0.3, 50)


def test_configured_context_larger_than_server_warns(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/props").respond_with_json(PROPS)
    b = LlamaCppBackend(httpserver.url_for("/"), context_size=8192)
    with pytest.warns(RuntimeWarning, match="reports 4096"):
        assert b.get_context_window() == 8192
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.get_context_window()  # warned once only


def test_readiness_waits_through_503(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/health").respond_with_json(LOADING, status=503)
    httpserver.expect_oneshot_request("/health").respond_with_json(LOADING, status=503)
    httpserver.expect_request("/health").respond_with_json({"status": "ok"})
    b = LlamaCppBackend(httpserver.url_for("/"))
    assert b.health().state == "loading"
    assert b.wait_until_ready(timeout=5, interval=0.01).ready


def test_readiness_past_the_bound_raises_model_loading(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/health").respond_with_json(LOADING, status=503)
    with pytest.raises(ModelLoading, match="not ready after"):
        LlamaCppBackend(httpserver.url_for("/")).wait_until_ready(timeout=0.2, interval=0.05)


def test_unreachable_server_health_says_so() -> None:
    health = LlamaCppBackend("http://127.0.0.1:9").health()
    assert health.state == "unreachable" and not health.ready


OLLAMA_SHOW = {"model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
               "parameters": "stop \"<|im_end|>\"", "capabilities": ["completion", "tools"]}


def test_ollama_context_is_the_allocated_window_from_api_ps(httpserver: HTTPServer) -> None:
    # /api/ps as Ollama 0.12 answers it while the model is loaded (the bodies are
    # written here from its api/types.go ProcessModelResponse).
    httpserver.expect_request("/api/show", method="POST").respond_with_json(OLLAMA_SHOW)
    httpserver.expect_request("/api/ps").respond_with_json({"models": [
        {"name": "llama3:8b", "model": "llama3:8b", "context_length": 8192},
        {"name": "qwen2.5:7b", "model": "qwen2.5:7b", "size": 6_000_000_000,
         "size_vram": 6_000_000_000, "context_length": 4096}]})
    b = OllamaBackend(httpserver.url_for("/"), model="qwen2.5:7b")
    assert b.get_context_window() == 4096  # what Ollama allocated, not the model's 32768
    assert b.supports_native_tools() is True
    assert b.server_info().extra["model_max_context"] == 32768


def test_ollama_context_from_num_ctx_when_not_loaded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_request("/api/show").respond_with_json(
        {**OLLAMA_SHOW, "parameters": "num_ctx 8192\nstop x", "capabilities": ["completion"]})
    b = OllamaBackend(httpserver.url_for("/"), model="llama3")
    assert b.get_context_window() == 8192
    assert b.supports_native_tools() is False
    assert json.loads(next(r for r, _ in httpserver.log if r.path == "/api/show").get_data()
                      ) == {"model": "llama3"}


def test_ollama_never_reports_the_training_maximum_as_the_window(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_request("/api/show").respond_with_json(OLLAMA_SHOW)
    b = OllamaBackend(httpserver.url_for("/"), model="qwen2.5:7b")
    with pytest.raises(UnsupportedFeature, match="while the model is loaded.*32768"):
        b.get_context_window()
    assert b.server_info().context_window is None
    assert OllamaBackend(httpserver.url_for("/"), model="qwen2.5:7b",
                         context_size=16384).get_context_window() == 16384


def test_ollama_readiness_is_root_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/").respond_with_data("Ollama is running")
    assert OllamaBackend(httpserver.url_for("/")).health().ready


def test_ollama_refuses_tool_choice_and_grammar_before_sending() -> None:
    b = OllamaBackend("http://127.0.0.1:9")
    with pytest.raises(UnsupportedFeature, match="tool_choice"):
        b.infer(InferenceRequest(user_prompt="x", tools=[TOOL], tool_choice="required"))
    with pytest.raises(UnsupportedFeature, match="grammar is not supported by ollama"):
        b.infer(InferenceRequest(user_prompt="x", grammar='root ::= "a"'))


def test_vllm_context_from_max_model_len_and_version(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/models").respond_with_json({"object": "list", "data": [
        {"id": "Qwen/Qwen2.5-7B-Instruct", "object": "model", "max_model_len": 32768}]})
    httpserver.expect_request("/version").respond_with_json({"version": "0.9.2"})
    httpserver.expect_request("/health").respond_with_data("")
    b = VLLMBackend(httpserver.url_for("/"), model="Qwen/Qwen2.5-7B-Instruct")
    assert b.get_context_window() == 32768
    assert b.health().ready
    assert b.server_info().version == "0.9.2"


def test_vllm_without_tool_parser_explains_the_flags(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"object": "error", "type": "BadRequestError", "code": 400, "message":
         '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'},
        status=400)
    b = VLLMBackend(httpserver.url_for("/"))
    for call in (lambda r: b.infer(r), lambda r: list(b.stream(r))):
        with pytest.raises(ToolsNotEnabled, match="start vLLM with --enable-auto-tool-choice"):
            call(InferenceRequest(user_prompt="x", tools=[TOOL]))


def test_vllm_sends_its_names_for_extra_samplers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion())
    VLLMBackend(httpserver.url_for("/")).infer(
        InferenceRequest(user_prompt="x", repeat_penalty=1.2, top_k=3))
    body = json.loads(httpserver.log[-1][0].get_data())
    assert body["repetition_penalty"] == 1.2 and body["top_k"] == 3
    assert "repeat_penalty" not in body


def test_lmstudio_context_and_state_from_api_v0(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v0/models").respond_with_json({"object": "list", "data": [
        {"id": "text-embedding-nomic", "type": "embeddings", "state": "not-loaded",
         "max_context_length": 2048},
        {"id": "qwen2.5-7b-instruct", "type": "llm", "state": "not-loaded",
         "max_context_length": 32768},
    ]})
    httpserver.expect_request("/v1/models").respond_with_json({"data": []})
    b = LMStudioBackend(httpserver.url_for("/"))
    with pytest.warns(RuntimeWarning, match="maximum context of qwen2.5-7b-instruct"):
        assert b.get_context_window() == 32768
    health = b.health()
    assert health.ready and "not-loaded" in health.detail


def test_openai_backend_needs_a_url_and_reports_unknown_context(httpserver: HTTPServer) -> None:
    with pytest.raises(ConfigError, match="server_url"):
        OpenAIBackend()
    httpserver.expect_request("/v1/models").respond_with_json({"data": [{"id": "m"}]})
    with pytest.raises(UnsupportedFeature, match="set model.context_size"):
        OpenAIBackend(httpserver.url_for("/")).get_context_window()


def test_backend_is_a_context_manager_that_closes(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion("hi"))
    session = requests.Session()
    with LlamaCppBackend(httpserver.url_for("/"), session=session) as b:
        assert b.infer(InferenceRequest(user_prompt="x")).text == "hi"
        assert session.adapters["http://"].poolmanager.pools  # type: ignore[attr-defined]
    assert not session.adapters["http://"].poolmanager.pools  # type: ignore[attr-defined]


def test_without_native_tools_they_go_in_the_prompt_and_calls_come_from_text(
    httpserver: HTTPServer,
) -> None:
    text = 'Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' \
           "\n</tool_call>"
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion(text))
    weather = ToolDefinition("get_weather", "Weather for a city", {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    b = LlamaCppBackend(httpserver.url_for("/"), native_tools=False, tool_call_format="hermes")
    httpserver.expect_request("/props").respond_with_json(PROPS)
    resp = b.infer(InferenceRequest(system_prompt="Be brief.", user_prompt="Weather in Paris?",
                                    tools=[weather]))
    body = next(json.loads(r.get_data()) for r, _ in httpserver.log
                if r.path == "/v1/chat/completions")
    assert "tools" not in body
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.")
    assert '"name": "get_weather"' in system["content"] and "<tool_call>" in system["content"]
    assert [(c.name, c.args) for c in resp.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert resp.text == "Let me look." and resp.next_action == "CONTINUE"


def test_config_native_tools_false_reaches_the_backend() -> None:
    from pedrollm.config import load_config
    from pedrollm.factory import new_backend

    cfg = load_config(env={"PEDROLLM_NATIVE_TOOLS": "false"}, overrides={"type": "llamacpp"})
    with new_backend(cfg) as b:
        assert b.supports_native_tools() is False


def test_llamacpp_without_jinja_falls_back_to_tools_in_the_prompt(
    httpserver: HTTPServer,
) -> None:
    from werkzeug import Request, Response

    def chat(request: Request) -> Response:
        body = json.loads(request.get_data())
        if "tools" in body:
            return Response(json.dumps({"error": {
                "code": 500, "message": "tools param requires --jinja flag",
                "type": "server_error"}}), status=500, content_type="application/json")
        text = '<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>'
        if body.get("stream"):
            return Response(sse(chunk({"content": text}), chunk({}, "stop")),
                            content_type="text/event-stream")
        return Response(json.dumps(completion(text)), content_type="application/json")

    httpserver.expect_request("/props").respond_with_json(PROPS)
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(chat)
    b = LlamaCppBackend(httpserver.url_for("/"), tool_call_format="hermes")
    req = InferenceRequest(user_prompt="Weather?", tools=[TOOL])
    with pytest.warns(RuntimeWarning, match="--jinja"):
        first = b.infer(req)
    assert [c.name for c in first.tool_calls] == ["get_weather"]
    assert b.supports_native_tools() is False
    streamed = list(b.stream(req))[-1].response
    assert streamed is not None and [c.name for c in streamed.tool_calls] == ["get_weather"]
    chats = [json.loads(r.get_data()) for r, _ in httpserver.log
             if r.path == "/v1/chat/completions"]
    assert ["tools" in c for c in chats] == [True, False, False]


def test_native_tools_forced_on_does_not_fall_back(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json({"error": {
        "code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}},
        status=500)
    b = LlamaCppBackend(httpserver.url_for("/"), native_tools=True, max_retries=0)
    with pytest.raises(ToolsNotEnabled, match="--jinja"):
        b.infer(InferenceRequest(user_prompt="Weather?", tools=[TOOL]))


def test_a_think_block_opened_by_the_template_goes_to_reasoning(httpserver: HTTPServer) -> None:
    template = ("{%- for m in messages %}{{ m.content }}{%- endfor %}"
                "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}"
                "{%- endif %}")
    httpserver.expect_request("/props").respond_with_json({**PROPS, "chat_template": template})
    text = 'The user wants weather.\n</think>\n<tool_call>\n{"name": "get_weather", ' \
           '"arguments": {}}\n</tool_call>'
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion(text))
    b = LlamaCppBackend(httpserver.url_for("/"), native_tools=False)
    resp = b.infer(InferenceRequest(user_prompt="Weather?", tools=[TOOL]))
    assert resp.reasoning == "The user wants weather."
    assert [c.name for c in resp.tool_calls] == ["get_weather"] and resp.text == ""


def test_lmstudio_prefers_the_loaded_context_to_the_maximum(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v0/models").respond_with_json({"object": "list", "data": [
        {"id": "qwen3-4b", "type": "llm", "state": "loaded", "max_context_length": 262144,
         "loaded_context_length": 4096}]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LMStudioBackend(httpserver.url_for("/")).get_context_window() == 4096


def test_lmstudio_unknown_route_answered_200_is_not_found(httpserver: HTTPServer) -> None:
    # LM Studio answers an unknown route with 200 and this body.
    httpserver.expect_request("/v1/no-such-route").respond_with_json(
        {"error": "Unexpected endpoint or method. (GET /v1/no-such-route)"})
    b = LMStudioBackend(httpserver.url_for("/"), max_retries=0)
    with pytest.raises(NotFound, match="Unexpected endpoint") as info:
        b.client.get_json("/v1/no-such-route")
    assert info.value.status == 404


@pytest.mark.parametrize(("version", "field"), [
    ("0.10.1.1", "guided_grammar"), ("0.9.2", "guided_grammar"),
    ("0.11.0", "structured_outputs"), ("0.12.0rc1", "structured_outputs"),
    (None, "structured_outputs"),
])
def test_vllm_grammar_goes_where_its_version_reads_it(
        httpserver: HTTPServer, version: str | None, field: str) -> None:
    if version is None:
        httpserver.expect_request("/version").respond_with_data("", status=404)
    else:
        httpserver.expect_request("/version").respond_with_json({"version": version})
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion("a"))
    b = VLLMBackend(httpserver.url_for("/"), max_retries=0)
    b.infer(InferenceRequest(user_prompt="x", grammar='root ::= "a"'))
    b.infer(InferenceRequest(user_prompt="x", grammar='root ::= "a"'))
    bodies = [json.loads(r.get_data()) for r, _ in httpserver.log if r.path.endswith("completions")]
    other = ({"guided_grammar", "structured_outputs"} - {field}).pop()
    expected = {"grammar": 'root ::= "a"'} if field == "structured_outputs" else 'root ::= "a"'
    assert len(bodies) == 2
    for body in bodies:
        assert body[field] == expected and other not in body
    assert len([r for r, _ in httpserver.log if r.path == "/version"]) == 1  # asked once


def test_tools_turned_off_in_the_config_are_left_out_with_one_warning(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion("In text."))
    b = LlamaCppBackend(httpserver.url_for("/"), enable_tools=False)
    req = InferenceRequest(user_prompt="Weather in Paris?", tools=[TOOL], tool_choice="auto")
    with pytest.warns(RuntimeWarning, match="enable_tools is false") as caught:
        assert b.infer(req).text == "In text."
        assert b.infer(req).text == "In text."
    assert len([w for w in caught if "enable_tools" in str(w.message)]) == 1
    body = json.loads(httpserver.log[-1][0].get_data())
    assert "tools" not in body and "tool_choice" not in body
    assert "get_weather" not in json.dumps(body)
