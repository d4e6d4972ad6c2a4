"""Other servers' faces: Ollama, vLLM and LM Studio, each on request."""

from __future__ import annotations

import json

import pytest
import requests
from fake_helpers import WEATHER_TOOL

from fakellama.personalities import personality
from fakellama.server import FakeServer

ASK = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
       "tools": [WEATHER_TOOL]}


@pytest.mark.fake_llama(personality="ollama", ctx_size=8192)
def test_ollama_root_version_tags_and_show(fake_llama_server: FakeServer) -> None:
    assert requests.get(fake_llama_server.url + "/").text == "Ollama is running"
    assert "version" in requests.get(fake_llama_server.url + "/api/version").json()
    assert requests.get(fake_llama_server.url + "/api/tags").json()["models"][0]["name"]
    show = requests.post(
        fake_llama_server.url + "/api/show", json={"model": "scripted-tiny.gguf"}
    ).json()
    assert show["model_info"]["llama.context_length"] == 8192


@pytest.mark.fake_llama(personality="ollama", ctx_size=8192)
def test_ollama_streams_tool_calls_whole_without_index(fake_llama_server: FakeServer) -> None:
    text = requests.post(
        fake_llama_server.url + "/v1/chat/completions", json=dict(ASK, stream=True)
    ).text
    chunks = [json.loads(b[6:]) for b in text.split("\n\n") if b and b != "data: [DONE]"]
    calls = [c for ch in chunks for choice in ch["choices"]
             for c in choice["delta"].get("tool_calls") or []]
    assert len(calls) == 1
    assert "index" not in calls[0]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert all("timings" not in ch for ch in chunks)


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


def test_vllm_health_version_and_max_model_len() -> None:
    with FakeServer(personality="vllm", ctx_size=2048) as server:
        health = requests.get(server.url + "/health")
        assert (health.status_code, health.content) == (200, b"")
        assert "version" in requests.get(server.url + "/version").json()
        model = requests.get(server.url + "/v1/models").json()["data"][0]
        assert model["max_model_len"] == 2048
        missing = requests.get(server.url + "/props")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
        chat = requests.post(server.url + "/v1/chat/completions", json=ASK).json()
        assert "timings" not in chat


def test_lmstudio_v0_models_have_context_and_state() -> None:
    with FakeServer(personality="lmstudio", ctx_size=4096) as server:
        model = requests.get(server.url + "/api/v0/models").json()["data"][0]
        assert (model["max_context_length"], model["state"]) == (4096, "loaded")
        assert requests.post(server.url + "/v1/chat/completions", json=ASK).status_code == 200


def test_unknown_personality_names_the_choices() -> None:
    with pytest.raises(ValueError, match="llamacpp, ollama, vllm, lmstudio"):
        personality("tgi")
